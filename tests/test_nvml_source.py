"""The NVML source and collector, through the real pynvml against the fake libnvidia-ml."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fakenvml import call_counts, reset_counts

from vramtop.attribution import Attributor
from vramtop.collector import Collector
from vramtop.demo.scenario import Gpu, MigDevice, Process, Scenario
from vramtop.sources.host import HostSource
from vramtop.sources.nvml import GpuSelection, NvmlSource
from vramtop.sources.procs import EXITED, GONE

GIB = 2**30


def collect(selection: GpuSelection | None = None):
    nvml = NvmlSource(selection=selection)
    try:
        return Collector(HostSource(), nvml, attributor=Attributor()).collect()
    finally:
        nvml.close()


def test_zero_gpus(scenario):
    scenario(Scenario())
    frame = collect()
    assert frame.gpus == () and frame.source("nvml").state == "ok"
    assert frame.driver_version == "550.54.15"


def test_one_gpu_every_field(scenario):
    scenario(
        Scenario(
            gpus=(
                Gpu(
                    name="NVIDIA A100-SXM4-80GB",
                    uuid="GPU-1234",
                    memory_total=80 * GIB,
                    memory_used=10 * GIB,
                    memory_reserved=GIB // 2,
                    utilization_gpu=73,
                    utilization_memory=41,
                    temperature=66,
                    power_usage_mw=312_500,
                    power_limit_mw=400_000,
                ),
            )
        )
    )
    (g,) = collect().gpus
    assert (g.index, g.name, g.uuid, g.state) == (0, "NVIDIA A100-SXM4-80GB", "GPU-1234", "ok")
    # v2 memory info: reserved memory is not "used", matching nvidia-smi
    assert (g.memory_used_bytes, g.memory_total_bytes, g.memory_reserved_bytes) == (
        10 * GIB,
        80 * GIB,
        GIB // 2,
    )
    assert (g.utilization_percent, g.memory_utilization_percent) == (73.0, 41.0)
    assert (g.temperature_c, g.power_watts, g.power_limit_watts) == (66.0, 312.5, 400.0)
    assert g.mig_mode is False and dict(g.unavailable) == {}


def test_eight_gpus_with_real_processes_attributed(scenario, spawn):
    children = [spawn("--model", f"org/model-{i}") for i in range(8)]
    helper = spawn("--helper")
    gpus = tuple(
        Gpu(
            uuid=f"GPU-{i:04d}",
            memory_used=(i + 1) * GIB,
            processes=(
                Process(children[i].pid, (i + 1) * GIB),
                *((Process(helper.pid, GIB),) if i < 2 else ()),
            ),
        )
        for i in range(8)
    )
    scenario(Scenario(gpus=gpus))
    frame = collect()
    assert [g.index for g in frame.gpus] == list(range(8))
    for i, g in enumerate(frame.gpus):
        p = next(p for p in g.processes if p.pid == children[i].pid)
        assert (p.model, p.model_source, p.used_memory_bytes) == (
            f"org/model-{i}",
            "cmdline",
            (i + 1) * GIB,
        )
        assert p.user and p.name and f"org/model-{i}" in p.command and p.detail is None
    assert {m.name: m.vram_bytes for m in frame.models} == {
        f"org/model-{i}": (i + 1) * GIB for i in range(8)
    }
    unattributed = [p for g in frame.gpus for p in g.processes if p.pid == helper.pid]
    assert len(unattributed) == 2 and all(p.model is None for p in unattributed)


def test_not_supported_fields_are_none_with_reason(scenario):
    scenario(
        Scenario(
            gpus=(
                Gpu(
                    errors={
                        "temperature": "NOT_SUPPORTED",
                        "power_usage": "NO_PERMISSION",
                        "power_limit": "NOT_SUPPORTED",
                        "utilization": "UNKNOWN",
                    }
                ),
            )
        )
    )
    (g,) = collect().gpus
    assert g.temperature_c is None and g.power_watts is None and g.power_limit_watts is None
    assert g.utilization_percent is None and g.memory_total_bytes == 80 * GIB
    assert g.unavailable["temperature_c"] == "not supported on this GPU"
    assert g.unavailable["power_watts"] == "no permission to read it (NVML)"
    assert g.unavailable["utilization_percent"].startswith("NVML error: ")


def test_lost_gpu_is_a_state_while_others_work(scenario):
    scenario(Scenario(gpus=(Gpu(uuid="GPU-a"), Gpu(uuid="GPU-b", lost=True), Gpu(uuid="GPU-c"))))
    frame = collect()
    assert [g.state for g in frame.gpus] == ["ok", "lost", "ok"]
    lost = frame.gpus[1]
    assert lost.memory_used_bytes is None and "lost" in lost.unavailable["state"]
    assert frame.gpus[2].memory_total_bytes == 80 * GIB
    assert frame.source("nvml").state == "ok"


def test_gpu_lost_mid_run_and_back(scenario):
    scenario(Scenario(gpus=(Gpu(uuid="GPU-a"),)))
    nvml = NvmlSource()
    try:
        assert nvml.poll().gpus[0].state == "ok"
        scenario(Scenario(gpus=(Gpu(uuid="GPU-a", lost=True),)))
        g = nvml.poll().gpus[0]
        assert (g.state, g.uuid) == ("lost", "GPU-a")
        scenario(Scenario(gpus=(Gpu(uuid="GPU-a"),)))
        assert nvml.poll().gpus[0].state == "ok"
    finally:
        nvml.close()


def test_na_process_memory_is_none_and_model_sums_known(scenario, spawn):
    a, b = spawn("--model", "m"), spawn("--model", "m")
    scenario(Scenario(gpus=(Gpu(processes=(Process(a.pid, None), Process(b.pid, 3 * GIB))),)))
    frame = collect()
    by_pid = {p.pid: p for p in frame.gpus[0].processes}
    assert by_pid[a.pid].used_memory_bytes is None and by_pid[a.pid].model == "m"
    assert frame.models[0].vram_bytes == 3 * GIB and frame.models[0].processes == tuple(
        sorted((a.pid, b.pid))
    )


def test_pid_psutil_cannot_find_is_listed_with_reason(scenario, spawn):
    gone = spawn("--model", "x")
    gone.kill()
    gone.wait()
    scenario(Scenario(gpus=(Gpu(processes=(Process(gone.pid, GIB), Process(2**22 + 17, GIB))),)))
    procs = collect().gpus[0].processes
    assert [p.detail for p in procs] == [GONE, GONE]
    assert all(p.used_memory_bytes == GIB and p.model is None for p in procs)


def test_process_that_exits_mid_read(scenario, spawn):
    victim = spawn("--model", "victim")
    survivor = spawn("--model", "survivor")
    scenario(
        Scenario(
            gpus=(
                Gpu(
                    processes=(
                        Process(victim.pid, GIB, kill_on_read=True),
                        Process(survivor.pid, GIB),
                    )
                ),
            )
        )
    )
    frame = collect()
    victim.wait(timeout=10)
    assert victim.returncode == -9, "the fake should have killed it during the process query"
    by_pid = {p.pid: p for p in frame.gpus[0].processes}
    assert by_pid[victim.pid].detail in (GONE, EXITED)
    assert by_pid[survivor.pid].model == "survivor"


def test_mig_mode_devices_and_processes(scenario, spawn):
    worker = spawn("--model", "mig-model")
    scenario(
        Scenario(
            gpus=(
                Gpu(
                    uuid="GPU-m",
                    mig_current=1,
                    mig_pending=1,
                    processes=(Process(worker.pid, 2 * GIB, gpu_instance_id=2),),
                    mig_devices=(
                        MigDevice("MIG-1", 10 * GIB, 0, 1),
                        MigDevice("MIG-2", 20 * GIB, 2 * GIB, 2),
                    ),
                ),
                Gpu(uuid="GPU-n"),
            )
        )
    )
    g, plain = collect().gpus
    assert g.mig_mode is True and plain.mig_mode is False
    assert [(m.uuid, m.gpu_instance_id, m.memory_total_bytes) for m in g.mig_devices] == [
        ("MIG-1", 1, 10 * GIB),
        ("MIG-2", 2, 20 * GIB),
    ]
    (p,) = g.processes
    assert (p.mig_device, p.model, p.used_memory_bytes) == ("MIG-2", "mig-model", 2 * GIB)


def test_old_driver_v2_process_and_v1_memory_fallback(scenario, spawn):
    child = spawn("--model", "old")
    scenario(
        Scenario(
            process_api=2,
            gpus=(
                Gpu(
                    memory_used=GIB,
                    memory_reserved=GIB,
                    errors={"memory_v2": "FUNCTION_NOT_FOUND"},
                    processes=(Process(child.pid, GIB),),
                ),
            ),
        )
    )
    (g,) = collect().gpus
    assert [p.model for p in g.processes] == ["old"]
    # v1 counts reserved memory as used; no reserved figure exists
    assert (g.memory_used_bytes, g.memory_reserved_bytes) == (2 * GIB, None)


def test_graphics_and_compute_of_one_process_merge(scenario, spawn):
    child = spawn()
    scenario(
        Scenario(
            gpus=(
                Gpu(
                    processes=(
                        Process(child.pid, GIB),
                        Process(child.pid, 2 * GIB, type="graphics"),
                    )
                ),
            )
        )
    )
    (p,) = collect().gpus[0].processes
    assert (p.kind, p.used_memory_bytes) == ("compute+graphics", 2 * GIB)


@pytest.mark.parametrize(
    ("text", "indices", "note"),
    [
        ("1", [1], ""),
        ("2,0", [0, 2], ""),
        ("GPU-bbbb", [1], ""),
        ("gpu-cc", [2], ""),
        ("0,7", [0], "GPU selection 7 matched no GPU (this host has 3)"),
        ("", [], ""),
    ],
)
def test_gpu_selection(scenario, text, indices, note):
    scenario(Scenario(gpus=tuple(Gpu(uuid=f"GPU-{c * 4}") for c in "abc")))
    frame = collect(GpuSelection.parse(text))
    assert [g.index for g in frame.gpus] == indices
    assert frame.source("nvml").detail == note


def test_no_driver_is_an_error_status_not_a_crash(tmp_path, loaded_fake, monkeypatch):
    monkeypatch.setenv("FAKE_NVML_SCENARIO", str(tmp_path / "missing.toml"))
    frame = collect()
    nvml = frame.source("nvml")
    assert (nvml.state, nvml.detail) == ("error", "the NVIDIA driver is not loaded")
    assert frame.host.cpu_count and frame.host.memory_total_bytes


def test_static_fields_cached_and_handles_created_once(scenario, loaded_fake):
    scenario(Scenario(gpus=(Gpu(), Gpu())))
    nvml = NvmlSource()
    try:
        nvml.poll()
        reset_counts(loaded_fake)
        nvml.poll()
        nvml.poll()
        counts = call_counts(loaded_fake)
    finally:
        nvml.close()
    for symbol in (
        "nvmlDeviceGetName",
        "nvmlDeviceGetUUID",
        "nvmlDeviceGetHandleByIndex_v2",
        "nvmlDeviceGetCount_v2",
        "nvmlInit_v2",
        "nvmlInitWithFlags",
        "nvmlDeviceGetEnforcedPowerLimit",
        "nvmlDeviceGetMigMode",
    ):
        assert counts.get(symbol, 0) == 0, symbol
    assert counts["nvmlDeviceGetMemoryInfo_v2"] == 4


def test_nvml_started_early_is_taken_over_by_the_source(scenario, loaded_fake):
    # The command line starts NVML on its own thread before the imports; the first source
    # uses that NVML instead of initialising it again, and its close() shuts it down.
    from vramtop.sources import nvml_start

    scenario(Scenario(gpus=(Gpu(memory_total=80 * GIB, memory_used=GIB),)))
    reset_counts(loaded_fake)
    nvml_start.start_early()
    nvml = NvmlSource()
    try:
        frame = Collector(HostSource(), nvml, attributor=Attributor()).collect()
        assert [g.memory_used_bytes for g in frame.gpus] == [GIB]
        assert nvml_start.take_early() is None  # taken once, by the source
    finally:
        nvml.close()
    counts = call_counts(loaded_fake)
    assert counts["nvmlInit_v2"] + counts["nvmlInitWithFlags"] == 1
    assert counts["nvmlShutdown"] == 1


def test_nvml_started_early_and_left_is_shut_down(scenario, loaded_fake):
    from vramtop.sources import nvml_start

    scenario(Scenario())
    reset_counts(loaded_fake)
    nvml_start.start_early()
    nvml_start._thread.join()  # a mode that stopped before any source, say on a bad config
    nvml_start.release_early()
    counts = call_counts(loaded_fake)
    assert counts["nvmlInit_v2"] + counts["nvmlInitWithFlags"] == 1
    assert counts["nvmlShutdown"] == 1
    assert nvml_start.take_early() is None


def test_nvml_start_failing_is_the_sources_error(scenario, loaded_fake, monkeypatch):
    from vramtop.sources import nvml_start

    path = scenario(Scenario())
    monkeypatch.setenv("FAKE_NVML_SCENARIO", str(path.parent / "missing.toml"))
    nvml_start.start_early()
    nvml = NvmlSource()
    try:
        frame = Collector(HostSource(), nvml, attributor=Attributor()).collect()
    finally:
        nvml.close()
    status = frame.source("nvml")
    assert status.state == "error" and status.detail


def test_pynvml_imported_without_ctypes_util_which_then_imports_whole():
    # A fresh interpreter: pynvml's import skips ctypes.util (and its subprocess, tempfile),
    # and both ctypes.util and pynvml's find_library work afterwards.
    code = (
        "import sys\n"
        "from vramtop.sources.nvml_start import import_pynvml\n"
        "p = import_pynvml()\n"
        "print(sorted(m for m in ('ctypes.util', 'subprocess', 'tempfile') if m in sys.modules))\n"
        "import ctypes.util\n"
        "print(ctypes.util.find_library('c') == p.find_library('c') != None)\n"
        "print(callable(ctypes.util._findSoname_ldconfig), import_pynvml() is p)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n") == ["[]", "True", "True True", ""], out.stdout + out.stderr
