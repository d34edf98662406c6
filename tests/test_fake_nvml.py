"""The real pynvml against the fake libnvidia-ml.so.1, and SimulatedNvml against both.

Each pynvml check runs in a subprocess: glibc finds libnvidia-ml.so.1 through LD_LIBRARY_PATH
only when a process starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pynvml
import pytest
from fakenvml import build, dump, fake_env

from vramtop.demo.scenario import (
    MAX_GPUS,
    NO_INSTANCE,
    U64_MAX,
    Event,
    Gpu,
    MigDevice,
    Process,
    Scenario,
)
from vramtop.demo.simnvml import SimulatedNvml

REPO_ROOT = Path(__file__).resolve().parents[1]
GiB = 1 << 30

ERR_NOT_SUPPORTED = {"error": "NVMLError_NotSupported"}
ERR_NO_PERMISSION = {"error": "NVMLError_NoPermission"}
ERR_LOST = {"error": "NVMLError_GpuIsLost"}


@pytest.fixture(scope="session")
def lib() -> Path:
    try:
        return build()
    except RuntimeError as e:
        pytest.fail(f"cannot build the fake NVML library: {e}")


@pytest.fixture
def scenario_path(tmp_path: Path) -> Path:
    return tmp_path / "scenario.toml"


def env_for(lib: Path, scenario_path: Path | None) -> dict[str, str]:
    env = fake_env(lib, scenario_path)
    # As under pytest: the repository (for vramtop) and tests/ (for fakenvml) importable.
    paths = (str(REPO_ROOT), str(REPO_ROOT / "tests"), env.get("PYTHONPATH"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return env


def run_python(lib: Path, scenario_path: Path | None, code: str) -> Any:
    """Runs code under the fake; returns the JSON it printed on its last line."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env_for(lib, scenario_path),
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


DUMP_CODE = """
    import json, pynvml
    from fakenvml import dump
    print(json.dumps(dump(pynvml)))
"""


def real_dump(lib: Path, scenario_path: Path, scenario: Scenario) -> dict[str, Any]:
    scenario.write(scenario_path)
    return run_python(lib, scenario_path, DUMP_CODE)


def sim_dump(scenario: Scenario) -> dict[str, Any]:
    return json.loads(json.dumps(dump(SimulatedNvml(scenario))))


def busy_gpu(**changes: Any) -> Gpu:
    return replace(
        Gpu(
            name="NVIDIA A100-SXM4-40GB",
            uuid="GPU-8a7f5e1c-0000-4d2e-9b3a-000000000001",
            memory_total=40 * GiB,
            memory_used=12 * GiB,
            memory_reserved=512 << 20,
            utilization_gpu=87,
            utilization_memory=41,
            temperature=71,
            power_usage_mw=312_345,
            power_limit_mw=400_000,
            processes=(
                Process(pid=4242, used_memory=8 * GiB),
                Process(pid=4343, used_memory=4 * GiB, type="graphics"),
            ),
        ),
        **changes,
    )


# -- scenario model ---------------------------------------------------------------------------


def test_scenario_round_trips_through_toml(tmp_path: Path) -> None:
    scenario = Scenario(
        driver_version="535.1",
        process_api=2,
        gpus=(
            busy_gpu(name='quote " and backslash \\ and é', errors={"temperature": "UNKNOWN"}),
            Gpu(
                mig_current=1,
                mig_pending=1,
                lost=True,
                processes=(Process(pid=1, gpu_instance_id=3, compute_instance_id=0),),
                mig_devices=(MigDevice(uuid="MIG-x", memory_total=GiB, gpu_instance_id=3),),
            ),
        ),
    )
    path = tmp_path / "s.toml"
    scenario.write(path)
    assert Scenario.load(path) == scenario
    assert Scenario.from_dict(scenario.to_dict()) == scenario
    assert os.listdir(tmp_path) == ["s.toml"]  # the temporary file was renamed into place


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("colour = 1\n", "colour"),
        ("[[gpu]]\ncolour = 1\n", "gpu[0].colour"),
        ("[[gpu]]\n[[gpu.process]]\npid = 1\ncolour = 1\n", "gpu[0].process[0].colour"),
        ("[[gpu]]\n[[gpu.mig]]\ncolour = 1\n", "gpu[0].mig[0].colour"),
        ("[[gpu]]\n[[gpu.process]]\nused_memory = 1\n", "pid"),
        ("[[gpu]]\ntemperature = true\n", "temperature"),
        ("[[gpu]]\nutilization_gpu = 101\n", "utilization_gpu"),
        ('[[gpu]]\nerrors = "colour:NOT_SUPPORTED"\n', "colour"),
        ('[[gpu]]\nerrors = "name:NOT_A_CODE"\n', "NOT_A_CODE"),
        ("process_api = 4\n", "process_api"),
        ("[[gpu]]\n" + "[[gpu.mig]]\n" * 8, "MIG"),
        ("[[gpu]]\n" * (MAX_GPUS + 1), "GPUs"),
    ],
)
def test_scenario_rejects_bad_input(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "s.toml"
    path.write_text(toml)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Scenario.load(path)


# -- pynvml against the fake library ------------------------------------------------------------


def test_no_gpus(lib: Path, scenario_path: Path) -> None:
    out = real_dump(lib, scenario_path, Scenario())
    assert out["before_init"] == {"error": "NVMLError_Uninitialized"}
    assert out["init"] == "ok"
    assert out["driver_version"] == "550.54.15"
    assert out["count"] == 0
    assert out["gpus"] == []
    assert out["bad_index"] == {"error": "NVMLError_InvalidArgument"}
    assert out["bad_uuid"] == {"error": "NVMLError_NotFound"}
    assert out["after_shutdown"] == {"error": "NVMLError_Uninitialized"}


def test_every_field_round_trips(lib: Path, scenario_path: Path) -> None:
    gpu = busy_gpu(
        name='Quoted "GPU" \\ é',
        memory_total=U64_MAX,
        mig_pending=1,
        processes=(
            Process(pid=4242, used_memory=U64_MAX - 1, gpu_instance_id=5, compute_instance_id=6),
        ),
    )
    scenario = Scenario(
        driver_version="535.129.03",
        nvml_version="12.535.129.03",
        cuda_driver_version=12020,
        gpus=(gpu,),
    )
    out = real_dump(lib, scenario_path, scenario)
    assert out["driver_version"] == "535.129.03"
    assert out["nvml_version"] == "12.535.129.03"
    assert out["cuda_driver_version"] == out["cuda_driver_version_v2"] == 12020
    g = out["gpus"][0]
    assert g["index"] == 0
    assert g["name"] == gpu.name
    assert g["uuid"] == gpu.uuid
    assert g["by_uuid"]["name"] == gpu.name
    assert g["memory_v2"]["total"] == U64_MAX
    assert g["memory_v2"]["used"] == 12 * GiB
    assert g["memory_v2"]["reserved"] == 512 << 20
    assert g["utilization"] == {"type": "c_nvmlUtilization_t", "gpu": 87, "memory": 41}
    assert g["temperature"] == 71
    assert g["temperature_bad_sensor"] == {"error": "NVMLError_InvalidArgument"}
    assert g["power_usage"] == 312_345
    assert g["power_limit"] == 400_000
    assert g["mig_mode"] == [0, 1]
    assert g["max_mig_count"] == 0
    assert g["is_mig"]["value"] == 0
    assert g["compute_processes"] == [
        {
            "type": "nvmlFriendlyObject",
            "pid": 4242,
            "usedGpuMemory": U64_MAX - 1,
            "gpuInstanceId": 5,
            "computeInstanceId": 6,
        }
    ]
    assert g["graphics_processes"] == []


def test_eight_gpus(lib: Path, scenario_path: Path) -> None:
    gpus = tuple(Gpu(name=f"GPU number {i}", temperature=40 + i) for i in range(8))
    out = real_dump(lib, scenario_path, Scenario(gpus=gpus))
    assert out["count"] == 8
    assert [g["index"] for g in out["gpus"]] == list(range(8))
    assert [g["name"] for g in out["gpus"]] == [f"GPU number {i}" for i in range(8)]
    assert [g["temperature"] for g in out["gpus"]] == [40 + i for i in range(8)]
    uuids = [g["uuid"] for g in out["gpus"]]
    assert len(set(uuids)) == 8
    assert [g["by_uuid"]["name"] for g in out["gpus"]] == [f"GPU number {i}" for i in range(8)]
    assert out["bad_index"] == {"error": "NVMLError_InvalidArgument"}


def test_memory_v1_counts_reserved_as_used_and_v2_splits_it(lib: Path, scenario_path: Path) -> None:
    gpus = (
        Gpu(memory_total=100, memory_used=30, memory_reserved=5),
        Gpu(memory_total=100, memory_used=90, memory_reserved=20),  # overcommitted
    )
    out = real_dump(lib, scenario_path, Scenario(gpus=gpus))
    normal, over = out["gpus"]
    assert normal["memory"] == {"type": "c_nvmlMemory_t", "total": 100, "free": 65, "used": 35}
    assert normal["memory_v2"] == {
        "type": "c_nvmlMemory_v2_t",
        "version": pynvml.nvmlMemory_v2,
        "total": 100,
        "reserved": 5,
        "free": 65,
        "used": 30,
    }
    assert normal["memory_bad_version"] == {"error": "NVMLError_ArgumentVersionMismatch"}
    assert over["memory"]["free"] == 0
    assert over["memory"]["used"] == 110
    assert over["memory_v2"]["free"] == 0


FIELD_KEYS = {
    "name": ["name"],
    "uuid": ["uuid"],
    "memory": ["memory"],
    "memory_v2": ["memory_v2"],
    "utilization": ["utilization"],
    "temperature": ["temperature"],
    "power_usage": ["power_usage"],
    "power_limit": ["power_limit"],
    "mig_mode": ["mig_mode"],
    "compute_processes": ["compute_processes", "compute_processes_v3", "compute_processes_v2"],
    "graphics_processes": ["graphics_processes", "graphics_processes_v3", "graphics_processes_v2"],
}


def test_forced_errors_raise_the_matching_pynvml_exception(lib: Path, scenario_path: Path) -> None:
    gpus = (
        busy_gpu(errors=dict.fromkeys(FIELD_KEYS, "NOT_SUPPORTED")),
        busy_gpu(errors=dict.fromkeys(FIELD_KEYS, "NO_PERMISSION")),
        busy_gpu(),
    )
    out = real_dump(lib, scenario_path, Scenario(gpus=gpus))
    unsupported, forbidden, fine = out["gpus"]
    for keys in FIELD_KEYS.values():
        for key in keys:
            assert unsupported[key] == ERR_NOT_SUPPORTED, key
            assert forbidden[key] == ERR_NO_PERMISSION, key
            assert not isinstance(fine[key], dict) or "error" not in fine[key], key

    # And the classes really are pynvml's, as an `except` clause sees them.
    code = """
        import json, pynvml
        pynvml.nvmlInit()
        caught = []
        for i, cls in ((0, pynvml.NVMLError_NotSupported), (1, pynvml.NVMLError_NoPermission)):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            try:
                pynvml.nvmlDeviceGetPowerUsage(h)
            except cls as e:
                caught.append([type(e).__name__, e.value, str(e)])
        print(json.dumps(caught))
    """
    assert run_python(lib, scenario_path, code) == [
        ["NVMLError_NotSupported", 3, "Not Supported"],
        ["NVMLError_NoPermission", 4, "Insufficient Permissions"],
    ]


def test_lost_gpu_fails_every_call_while_another_works(lib: Path, scenario_path: Path) -> None:
    out = real_dump(lib, scenario_path, Scenario(gpus=(busy_gpu(lost=True), busy_gpu())))
    lost, fine = out["gpus"]
    assert out["count"] == 2
    assert all(value == ERR_LOST for key, value in lost.items() if key != "mig_devices"), lost
    assert lost["mig_devices"] == [ERR_LOST]
    assert fine["temperature"] == 71
    assert fine["compute_processes"][0]["pid"] == 4242


def test_unavailable_process_memory_is_none(lib: Path, scenario_path: Path) -> None:
    gpu = Gpu(processes=(Process(pid=10), Process(pid=11, used_memory=0)))
    out = real_dump(lib, scenario_path, Scenario(gpus=(gpu,)))
    procs = out["gpus"][0]["compute_processes_v2"]
    assert [(p["pid"], p["usedGpuMemory"]) for p in procs] == [(10, None), (11, 0)]
    assert procs[0]["gpuInstanceId"] == procs[0]["computeInstanceId"] == NO_INSTANCE


def test_process_api_2_has_no_v3_queries(lib: Path, scenario_path: Path) -> None:
    out = real_dump(lib, scenario_path, Scenario(process_api=2, gpus=(busy_gpu(),)))
    g = out["gpus"][0]
    assert g["compute_processes"] == {"error": "NVMLLibraryMismatchError"}
    assert g["graphics_processes"] == {"error": "NVMLLibraryMismatchError"}
    assert g["compute_processes_v3"] == {"error": "NVMLError_FunctionNotFound"}
    assert [p["pid"] for p in g["compute_processes_v2"]] == [4242]
    assert [p["pid"] for p in g["graphics_processes_v2"]] == [4343]


def test_mig_devices_and_their_processes(lib: Path, scenario_path: Path) -> None:
    gpu = Gpu(
        name="NVIDIA H100 80GB HBM3",
        mig_current=1,
        mig_pending=1,
        processes=(
            Process(pid=100, used_memory=GiB, gpu_instance_id=1, compute_instance_id=0),
            Process(pid=200, used_memory=2 * GiB, gpu_instance_id=2, compute_instance_id=0),
            Process(pid=300, used_memory=3 * GiB),
        ),
        mig_devices=(
            MigDevice(uuid="MIG-a", memory_total=10 * GiB, memory_used=GiB, gpu_instance_id=1),
            MigDevice(uuid="MIG-b", memory_total=20 * GiB, gpu_instance_id=2),
        ),
    )
    disabled = replace(gpu, mig_current=0, mig_pending=0)
    out = real_dump(lib, scenario_path, Scenario(gpus=(gpu, disabled)))
    g, off = out["gpus"]
    assert g["mig_mode"] == [1, 1]
    assert g["max_mig_count"] == 7
    assert [p["pid"] for p in g["compute_processes"]] == [100, 200, 300]
    a, b, *rest = g["mig_devices"]
    assert rest == [{"error": "NVMLError_NotFound"}] * 6
    assert a["name"] == "NVIDIA H100 80GB HBM3 MIG"
    assert a["uuid"] == "MIG-a"
    assert a["by_uuid"]["is_mig"]["value"] == 1
    assert a["is_mig"]["value"] == 1
    assert (a["gpu_instance_id"], a["compute_instance_id"]) == (1, 0)
    assert a["memory"] == {
        "type": "c_nvmlMemory_t",
        "total": 10 * GiB,
        "free": 9 * GiB,
        "used": GiB,
    }
    assert a["memory_v2"]["reserved"] == 0
    assert [p["pid"] for p in a["compute_processes"]] == [100]
    assert [p["pid"] for p in b["compute_processes_v2"]] == [200]
    assert a["temperature"] == a["mig_mode"] == a["index"] == ERR_NOT_SUPPORTED
    assert g["gpu_instance_id"] == ERR_NOT_SUPPORTED

    assert off["mig_mode"] == [0, 0]
    assert off["max_mig_count"] == 0
    assert off["mig_devices"] == [{"error": "NVMLError_NotFound"}]


KILL_CODE = """
    import ctypes, json, sys, pynvml
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    # The sizing call alone, as pynvml makes it first: it must not kill.
    fn = pynvml._nvmlGetFunctionPointer("nvmlDeviceGetComputeRunningProcesses_v3")
    count = ctypes.c_uint(0)
    rc = fn(handle, ctypes.byref(count), None)
    print(json.dumps([rc, count.value]), flush=True)
    sys.stdin.readline()
    pids = [p.pid for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle)]
    print(json.dumps(pids), flush=True)
"""


def test_kill_on_read_kills_the_process_mid_read(lib: Path, scenario_path: Path) -> None:
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    victim = subprocess.Popen(sleeper)
    bystander = subprocess.Popen(sleeper)
    reader = None
    try:
        gpu = Gpu(
            processes=(
                Process(pid=victim.pid, used_memory=GiB, kill_on_read=True),
                Process(pid=bystander.pid, used_memory=GiB),
            )
        )
        Scenario(gpus=(gpu,)).write(scenario_path)
        reader = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(KILL_CODE)],
            env=env_for(lib, scenario_path),
            cwd=REPO_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert reader.stdout is not None and reader.stdin is not None
        assert json.loads(reader.stdout.readline()) == [pynvml.NVML_ERROR_INSUFFICIENT_SIZE, 2]
        assert victim.poll() is None  # alive after the sizing call

        reader.stdin.write("\n")
        reader.stdin.flush()
        # The fake reports the pid, then kills it: the caller sees a process already gone.
        assert json.loads(reader.stdout.readline()) == [victim.pid, bystander.pid]
        assert reader.wait(timeout=30) == 0
        assert victim.wait(timeout=30) == -9
        assert bystander.poll() is None
    finally:
        for proc in (victim, bystander, reader):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


WATCH_CODE = """
    import json, sys, pynvml
    pynvml.nvmlInit()
    for _ in sys.stdin:
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        used = pynvml.nvmlDeviceGetMemoryInfo(h, version=pynvml.nvmlMemory_v2).used
        print(json.dumps([pynvml.nvmlDeviceGetCount(), used]), flush=True)
"""


def test_scenario_rewritten_under_a_running_process_is_picked_up(
    lib: Path, scenario_path: Path
) -> None:
    Scenario(gpus=(Gpu(memory_used=1),)).write(scenario_path)
    watcher = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(WATCH_CODE)],
        env=env_for(lib, scenario_path),
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert watcher.stdin is not None and watcher.stdout is not None

    def read() -> list[int]:
        watcher.stdin.write("\n")
        watcher.stdin.flush()
        return json.loads(watcher.stdout.readline())

    try:
        assert read() == [1, 1]
        Scenario(gpus=(Gpu(memory_used=2), Gpu())).write(scenario_path)
        assert read() == [2, 2]
        # Same size, same content shape: the new inode alone must trigger the re-read.
        Scenario(gpus=(Gpu(memory_used=3), Gpu())).write(scenario_path)
        assert read() == [2, 3]
        # A broken rewrite is reported and ignored: the last good scenario stays.
        scenario_path.write_text("[[gpu]]\nmemory_used = oops\n")
        assert read() == [2, 3]
    finally:
        watcher.stdin.close()
        watcher.wait(timeout=30)
    assert watcher.stderr is not None
    stderr = watcher.stderr.read()
    watcher.stderr.close()
    watcher.stdout.close()
    assert f"{scenario_path}:2:" in stderr


INIT_CODE = """
    import json, pynvml
    try:
        pynvml.nvmlInit()
        print(json.dumps("ok"))
    except pynvml.NVMLError as e:
        print(json.dumps(type(e).__name__))
"""


def test_missing_scenario_means_driver_not_loaded(lib: Path, tmp_path: Path) -> None:
    assert run_python(lib, None, INIT_CODE) == "NVMLError_DriverNotLoaded"
    assert run_python(lib, tmp_path / "absent.toml", INIT_CODE) == "NVMLError_DriverNotLoaded"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("# comment\n\n[[gpu]]\nname = 5\n", 4, "name: wrong type"),
        ("[[gpu]]\ncolour = 1\n", 2, "unknown key 'colour'"),
        ('[[gpu]]\nerrors = "name:NOPE"\n', 2, "unknown error code 'NOPE'"),
        ("[[gpu.process]]\npid = 1\n", 1, "before any [[gpu]]"),
        ("[[gpu]]\n[[gpu.process]]\nused_memory = 5\n", 2, "needs a pid"),
        ("[[gpu]]\n" + "[[gpu.mig]]\n" * 8, 9, "more than 7 MIG devices"),
        ("[[gpu]]\n" * 65, 65, "more than 64"),
        ('driver_version = "a\\tb"\n', 1, "unsupported escape"),
    ],
)
def test_parse_error_means_unknown_error_and_names_the_line(
    lib: Path, scenario_path: Path, text: str, line: int, message: str
) -> None:
    scenario_path.write_text(text)
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(INIT_CODE)],
        env=env_for(lib, scenario_path),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == "NVMLError_Unknown"
    [report] = result.stderr.splitlines()
    assert report.startswith(f"fake_nvml: {scenario_path}:{line}: "), report
    assert message in report


COUNT_CODE = """
    import json, pynvml
    from fakenvml import call_counts, reset_counts
    lib = LIB_PATH  # loaded by path: the instance pynvml loaded by soname all the same
    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    pynvml.nvmlDeviceGetHandleByIndex(0)
    pynvml.nvmlDeviceGetComputeRunningProcesses(h)  # two calls: size, then fill
    pynvml.nvmlDeviceGetGraphicsRunningProcesses(h)  # one call: nothing to report
    try:
        pynvml.nvmlDeviceGetTemperature(h, 1)
    except pynvml.NVMLError_InvalidArgument:
        pass  # failed calls count too
    before = call_counts(lib)
    reset_counts(lib)
    pynvml.nvmlDeviceGetCount()
    print(json.dumps([before, call_counts(lib)]))
"""


def test_call_counts(lib: Path, scenario_path: Path) -> None:
    gpu = Gpu(processes=(Process(pid=1),))
    Scenario(gpus=(gpu,)).write(scenario_path)
    code = COUNT_CODE.replace("LIB_PATH", repr(str(lib)))
    before, after = run_python(lib, scenario_path, code)
    nonzero = {name: n for name, n in before.items() if n}
    assert nonzero == {
        "nvmlInitWithFlags": 1,
        "nvmlDeviceGetHandleByIndex_v2": 2,
        "nvmlDeviceGetComputeRunningProcesses_v3": 2,
        "nvmlDeviceGetGraphicsRunningProcesses_v3": 1,
        "nvmlDeviceGetTemperature": 1,
        "*": 7,
    }
    assert {name: n for name, n in after.items() if n} == {"nvmlDeviceGetCount_v2": 1, "*": 1}


def test_hand_written_scenario_parses_the_same_in_c_and_python(
    lib: Path, scenario_path: Path
) -> None:
    scenario_path.write_text(
        textwrap.dedent(
            """\
            # A host as a person would write it.
            driver_version = "550.54.15"          # default
            cuda_driver_version = 12_040
            process_api = 3

            [[gpu]]
            name = "NVIDIA \\"Big\\" GPU \\\\ 1"
            memory_total = 85_899_345_920
            memory_used = +1073741824
            memory_reserved = 536870912
            utilization_gpu = 40
            temperature = 55  # C
            errors = " temperature : NOT_SUPPORTED , power_usage:NO_PERMISSION"
              [[gpu.process]]
              pid = 12345
              used_memory = -1
              type = "graphics"
            [[ gpu ]]
            mig_current = 1
            lost = false
            [[gpu.mig]]
            uuid = "MIG-7"
            memory_total = 10737418240
            gpu_instance_id = 1
            """
        )
    )
    real = run_python(lib, scenario_path, DUMP_CODE)
    assert real["gpus"][0]["name"] == 'NVIDIA "Big" GPU \\ 1'
    assert real["gpus"][0]["temperature"] == ERR_NOT_SUPPORTED
    assert real["gpus"][1]["mig_devices"][0]["uuid"] == "MIG-7"
    assert real == sim_dump(Scenario.load(scenario_path))


# -- the contract: SimulatedNvml answers exactly as pynvml over the fake does ------------------

CONTRACT_SCENARIOS = {
    "empty": Scenario(),
    "defaults": Scenario(gpus=(Gpu(),)),
    "busy": Scenario(gpus=(busy_gpu(), busy_gpu(uuid="", name="second"))),
    "errors": Scenario(
        gpus=(
            busy_gpu(
                errors={
                    "name": "UNKNOWN",
                    "memory": "NOT_SUPPORTED",
                    "temperature": "NOT_SUPPORTED",
                    "power_usage": "NO_PERMISSION",
                    "compute_processes": "FUNCTION_NOT_FOUND",
                    "graphics_processes": "GPU_IS_LOST",
                    "mig_mode": "NOT_SUPPORTED",
                }
            ),
            busy_gpu(errors={"uuid": "NO_PERMISSION", "memory_v2": "INSUFFICIENT_SIZE"}),
        )
    ),
    "lost": Scenario(gpus=(busy_gpu(), busy_gpu(lost=True, mig_current=1), busy_gpu())),
    "na_memory": Scenario(gpus=(Gpu(processes=(Process(pid=7), Process(pid=8, type="graphics"))),)),
    "overcommitted": Scenario(
        gpus=(Gpu(memory_total=10, memory_used=U64_MAX, memory_reserved=U64_MAX),)
    ),
    "mig": Scenario(
        gpus=(
            Gpu(
                mig_current=1,
                errors={"memory_v2": "NO_PERMISSION", "utilization": "NOT_SUPPORTED"},
                processes=(
                    Process(pid=1, used_memory=GiB, gpu_instance_id=1, compute_instance_id=0),
                    Process(pid=2, gpu_instance_id=2, type="graphics"),
                    Process(pid=3, used_memory=5),
                ),
                mig_devices=(
                    MigDevice(memory_total=10 * GiB, memory_used=GiB, gpu_instance_id=1),
                    MigDevice(uuid="MIG-two", memory_total=5, memory_used=9, gpu_instance_id=2),
                    MigDevice(gpu_instance_id=3, compute_instance_id=2),
                ),
            ),
            Gpu(mig_pending=1, mig_devices=(MigDevice(gpu_instance_id=1),)),
        )
    ),
    "lost_mig": Scenario(
        gpus=(Gpu(mig_current=1, lost=True, mig_devices=(MigDevice(),)), Gpu(mig_current=1))
    ),
    "process_api_2": Scenario(
        process_api=2,
        driver_version="470.223.02",
        nvml_version="11.470.223.02",
        cuda_driver_version=11040,
        gpus=(busy_gpu(), Gpu()),
    ),
    "eight": Scenario(gpus=tuple(busy_gpu(uuid="", name=f"gpu {i}") for i in range(8))),
    "health": Scenario(
        gpus=(
            busy_gpu(
                clocks_event_reasons=0x1FF,
                performance_state=8,
                ecc_mode=0,
                ecc_sbe_volatile=U64_MAX,
                ecc_dbe_volatile=3,
                ecc_sbe_aggregate=5,
                ecc_dbe_aggregate=6,
                retired_sbe=7,
                retired_dbe=8,
                retired_pending=1,
                remapped_cor=9,
                remapped_unc=10,
                remap_pending=1,
                remap_failure=1,
                pcie_replay=11,
                pcie_gen=2,
                pcie_gen_max=4,
                pcie_width=4,
                pcie_width_max=16,
                pcie_tx_kbps=123,
                pcie_rx_kbps=4_000_000_000,
                nvlink_links=12,
                nvlink_replay=13,
                nvlink_recovery=14,
                nvlink_crc_flit=15,
                nvlink_crc_data=16,
                supported_events=0x1B,
                processes=(
                    Process(pid=4242, used_memory=GiB, sm_util=55, mem_util=12),
                    Process(pid=4343, type="graphics", sm_util=0, mem_util=100),
                    Process(pid=4444),
                ),
            ),
            Gpu(performance_state=32, supported_events=0),
        )
    ),
    "health_errors": Scenario(
        gpus=(
            busy_gpu(
                errors={
                    "clocks_event_reasons": "NOT_SUPPORTED",
                    "performance_state": "NO_PERMISSION",
                    "ecc_counts": "NOT_SUPPORTED",
                    "remapped_rows": "UNKNOWN",
                    "pcie_link": "NOT_SUPPORTED",
                    "pcie_throughput": "NO_PERMISSION",
                    "nvlink": "NOT_SUPPORTED",
                    "process_utilization": "NOT_SUPPORTED",
                    "events": "NOT_SUPPORTED",
                },
                nvlink_links=2,
            ),
            busy_gpu(errors={"field_values": "GPU_IS_LOST", "retired_pages": "NO_PERMISSION"}),
            busy_gpu(lost=True),
        )
    ),
    "old_driver": Scenario(
        missing_functions=(
            "nvmlDeviceGetCurrentClocksEventReasons",
            "nvmlDeviceGetFieldValues",
            "nvmlDeviceGetProcessUtilization",
            "nvmlEventSetCreate",
            "nvmlDeviceGetTemperature",
            "nvmlSystemGetNVMLVersion",
        ),
        gpus=(busy_gpu(),),
    ),
    "events": Scenario(
        gpus=(busy_gpu(), busy_gpu(uuid=""), busy_gpu(uuid="", supported_events=0x8)),
        events=(
            Event(gpu=0, type="xid", data=79),
            Event(gpu=1, type="dbe"),
            Event(gpu=1, type="sbe"),
            Event(gpu=2, type="sbe"),  # not registered there: never delivered
            Event(gpu=2, type="xid", data=13),
            Event(at_ms=3_600_000, gpu=0, type="xid", data=48),  # not yet
            Event(gpu=1, type="lost"),
            Event(gpu=1, type="xid", data=31),  # registered, then lost: still delivered
        ),
    ),
}


@pytest.mark.parametrize("name", CONTRACT_SCENARIOS)
def test_simulator_matches_pynvml_over_the_fake(lib: Path, scenario_path: Path, name: str) -> None:
    scenario = CONTRACT_SCENARIOS[name]
    assert sim_dump(scenario) == real_dump(lib, scenario_path, scenario)


# -- the simulator on its own -------------------------------------------------------------------


def test_simulator_swaps_scenarios_and_exposes_pynvml_names() -> None:
    sim = SimulatedNvml(Scenario(gpus=(Gpu(temperature=50),)))
    assert sim.NVMLError is pynvml.NVMLError
    assert sim.NVMLError_NotSupported is pynvml.NVMLError_NotSupported
    assert sim.NVMLLibraryMismatchError is pynvml.NVMLLibraryMismatchError
    assert sim.NVML_TEMPERATURE_GPU == pynvml.NVML_TEMPERATURE_GPU
    assert sim.nvmlMemory_v2 == pynvml.nvmlMemory_v2
    with pytest.raises(AttributeError):
        sim.nvmlDeviceGetBrand  # noqa: B018 - not simulated, and never the real function

    with pytest.raises(pynvml.NVMLError_Uninitialized):
        sim.nvmlDeviceGetCount()
    sim.nvmlInit()
    handle = sim.nvmlDeviceGetHandleByIndex(0)
    assert sim.nvmlDeviceGetTemperature(handle, sim.NVML_TEMPERATURE_GPU) == 50
    sim.scenario = Scenario(gpus=(Gpu(temperature=60, errors={"power_usage": "NO_PERMISSION"}),))
    assert sim.nvmlDeviceGetTemperature(handle, sim.NVML_TEMPERATURE_GPU) == 60
    with pytest.raises(pynvml.NVMLError_NoPermission):
        sim.nvmlDeviceGetPowerUsage(handle)
    sim.scenario = Scenario()
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        sim.nvmlDeviceGetTemperature(handle, sim.NVML_TEMPERATURE_GPU)


def test_simulator_never_kills() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        gpu = Gpu(processes=(Process(pid=sleeper.pid, kill_on_read=True),))
        sim = SimulatedNvml(Scenario(gpus=(gpu,)))
        sim.nvmlInit()
        handle = sim.nvmlDeviceGetHandleByIndex(0)
        assert [p.pid for p in sim.nvmlDeviceGetComputeRunningProcesses(handle)] == [sleeper.pid]
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
