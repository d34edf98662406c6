"""GPU health in the exports: the Health column, per-GPU detail, the Events section, the JSON
``gpus[].health`` and ``events[]``, per-process use; read through the real pynvml against the
fake driver, end to end in a ``vramtop --once`` subprocess, and from hand-built Frames."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import jsonschema
from samples import frame

from vramtop.demo.scenario import Gpu, Process, Scenario
from vramtop.export import render
from vramtop.model import GpuHealth, HealthEvent, freeze
from vramtop.sources.procs import FIRST_SAMPLE

GIB = 2**30
SCHEMA = json.loads(
    (Path(__file__).parent.parent / "vramtop/schemas/vramtop-1.schema.json").read_text()
)
SICK = Gpu(
    uuid="GPU-sick",
    utilization_gpu=93,
    clocks_event_reasons=0x4 | 0x40,
    performance_state=2,
    ecc_mode=1,
    ecc_sbe_volatile=11,
    ecc_dbe_volatile=2,
    ecc_sbe_aggregate=1234,
    ecc_dbe_aggregate=5,
    remapped_cor=12,
    remapped_unc=4,
    remap_pending=1,
    remap_failure=0,
    pcie_replay=77,
    pcie_gen=4,
    pcie_gen_max=5,
    pcie_width=8,
    pcie_width_max=16,
    nvlink_links=18,
    nvlink_replay=21,
    nvlink_recovery=22,
    nvlink_crc_flit=23,
    nvlink_crc_data=24,
)
CAPPED = Gpu(uuid="GPU-capped", utilization_gpu=10, clocks_event_reasons=0x4)
LOST = Gpu(uuid="GPU-lost", lost=True)


def scenario_with(pid: int) -> Scenario:
    procs = (Process(pid, 20 * GIB, sm_util=55, mem_util=12),)
    return Scenario(gpus=(replace(SICK, processes=procs), CAPPED, LOST))


def test_json_health_read_exactly_through_the_real_bindings(run_vramtop, spawn):
    child = spawn("vllm", "serve", "--served-model-name", "m")
    out = run_vramtop("--once", "--format", "json", scenario=scenario_with(child.pid))
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    jsonschema.validate(doc, SCHEMA)
    sick, capped, lost = doc["gpus"]
    h = sick["health"]
    assert {k: v for k, v in h.items() if k != "unavailable"} == {
        "finding": "ECC DBE",
        "severity": "critical",
        "throttle_reasons": ["sw_power_cap", "hw_thermal"],
        "performance_state": 2,
        "ecc_mode": True,
        "ecc_corrected_volatile": 11,
        "ecc_uncorrected_volatile": 2,
        "ecc_corrected_aggregate": 1234,
        "ecc_uncorrected_aggregate": 5,
        "retired_pages_sbe": 0,
        "retired_pages_dbe": 0,
        "retired_pages_pending": False,
        "remapped_rows_correctable": 12,
        "remapped_rows_uncorrectable": 4,
        "remapped_rows_pending": True,
        "remapped_rows_failure": False,
        "pcie_replay_count": 77,
        "pcie_link_gen": 4,
        "pcie_link_gen_max": 5,
        "pcie_link_width": 8,
        "pcie_link_width_max": 16,
        "pcie_tx_bytes_per_second": None,
        "pcie_rx_bytes_per_second": None,
        "nvlink_links": 18,
        "nvlink_errors": {"replay": 21, "recovery": 22, "crc_flit": 23, "crc_data": 24},
    }
    # A one-shot run samples no PCIe throughput, and says why.
    assert set(h["unavailable"]) == {"pcie_tx_bytes_per_second", "pcie_rx_bytes_per_second"}
    assert (capped["health"]["finding"], capped["health"]["severity"]) == ("pwr-cap", "info")
    assert capped["health"]["unavailable"]["nvlink_errors"]
    assert lost["health"] is None and lost["state"] == "lost"
    (event,) = doc["events"]
    assert {k: event[k] for k in ("gpu_uuid", "gpu_index", "kind", "code", "severity")} == {
        "gpu_uuid": None,  # lost before its UUID could be read
        "gpu_index": 2,
        "kind": "gpu_lost",
        "code": None,
        "severity": "critical",
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    (p,) = sick["processes"]
    assert (p["sm_percent"], p["memory_controller_percent"]) == (55.0, 12.0)
    assert p["rss_bytes"] > 0 and p["started_at"] <= doc["time"]
    # One look cannot give a CPU rate: null, with the reason.
    assert p["cpu_percent"] is None and p["unavailable"]["cpu_percent"] == FIRST_SAMPLE


def test_text_and_markdown_health_column_detail_and_events(run_vramtop, spawn):
    child = spawn("vllm", "serve", "--served-model-name", "m")
    out = run_vramtop("--once", scenario=scenario_with(child.pid))
    assert out.returncode == 0, out.stderr
    text = out.stdout
    gpus = text.split("\nGPUs\n")[1].split("\n\n")[0].splitlines()
    assert gpus[0].split()[-2:] == ["State", "Health"]
    assert gpus[1].endswith("ok     ECC DBE")
    assert gpus[2].endswith("ok     pwr-cap")
    assert gpus[3].endswith("LOST   lost")
    for line in (
        "GPU 0 health: ECC DBE (critical), remap pending (warning), thermal (warning), "
        "PCIe x8 (warning), PCIe gen4 (warning), pwr-cap (info)",
        "GPU 0 clocks held back by: sw_power_cap, hw_thermal; performance state P2",
        "GPU 0 ECC on: since boot 11 corrected, 2 uncorrected; lifetime 1234 corrected, "
        "5 uncorrected",
        "GPU 0 remapped rows: 12 correctable, 4 uncorrectable, pending yes, failed no",
        "GPU 0 PCIe gen 4 of 5, x8 of x16, 77 replays",
        "GPU 0 NVLink 18 links, errors: replay 21, recovery 22, crc_flit 23, crc_data 24",
        "GPU 1 health: pwr-cap (info)",
    ):
        assert f"  {line}\n" in text, line
    assert "GPU 0 pcie_tx_bytes_per_second, pcie_rx_bytes_per_second: not sampled yet" in text
    events = text.split("\nEvents\n")[1].split("\n\n")[0].splitlines()
    assert events[0].split() == ["Time", "GPU", "Kind", "Code", "Meaning", "Severity"]
    assert re.fullmatch(
        r"  \d\d:\d\d:\d\dZ  2 +gpu_lost  n/a   GPU is lost \(.+\)  critical", events[1]
    ), events[1]
    procs = text.split("\nProcesses\n")[1].split("\n\n")[0].splitlines()
    assert procs[0].split()[:10] == [
        "GPU", "PID", "User", "Name", "VRAM", "SM", "%", "Mem", "%", "CPU",
    ]  # fmt: skip
    assert f"  0    {child.pid}" in procs[1] and "20.0 GiB  55%   12%" in procs[1]

    md = run_vramtop("--once", "--format", "markdown", scenario=scenario_with(child.pid))
    assert md.returncode == 0, md.stderr
    assert "### Events\n" in md.stdout and "| gpu\\_lost |" in md.stdout
    assert "| LOST | lost |" in md.stdout and "| ok | ECC DBE |" in md.stdout


T = 1_795_000_000.0  # 2026-11-18T11:06:40Z, the samples' frame time
XID79 = HealthEvent(T - 30, "GPU-aaaa", 0, "xid", 79, "GPU has fallen off the bus", "critical")
SBE = HealthEvent(T - 2000, "GPU-bbbb", 1, "ecc_sbe", None, "single-bit ECC error", "info")


def health_frame():
    f = frame()
    g0, g1, lost = f.gpus
    procs = list(g0.processes)
    procs[0] = replace(
        procs[0],
        sm_percent=87.0,
        memory_controller_percent=40.0,
        cpu_percent=101.5,
        rss_bytes=3 * GIB,
        started_at=T - 125,
    )
    procs[1] = replace(
        procs[1],
        unavailable=freeze({"sm_percent": "driver too old for nvmlDeviceGetProcessUtilization"}),
    )
    g0 = replace(g0, processes=tuple(procs), health=GpuHealth(throttle_reasons=()))
    g1 = replace(g1, health=GpuHealth(throttle_reasons=("hw_slowdown",), performance_state=0))
    return replace(f, gpus=(g0, g1, lost), events=(SBE, XID79))


def test_json_events_and_process_use_from_a_frame():
    doc = json.loads(render(health_frame(), "json"))
    jsonschema.validate(doc, SCHEMA)
    assert doc["events"] == [
        {
            "time": "2026-11-18T10:33:20Z",
            "epoch": T - 2000,
            "gpu_uuid": "GPU-bbbb",
            "gpu_index": 1,
            "kind": "ecc_sbe",
            "code": None,
            "meaning": "single-bit ECC error",
            "severity": "info",
        },
        {
            "time": "2026-11-18T11:06:10Z",
            "epoch": T - 30,
            "gpu_uuid": "GPU-aaaa",
            "gpu_index": 0,
            "kind": "xid",
            "code": 79,
            "meaning": "GPU has fallen off the bus",
            "severity": "critical",
        },
    ]
    g0, g1, lost = doc["gpus"]
    # The XID on GPU 0 outranks its free clocks; an SBE 2000 s old no longer colours GPU 1.
    assert (g0["health"]["finding"], g0["health"]["severity"]) == ("XID 79", "critical")
    assert (g1["health"]["finding"], g1["health"]["severity"]) == ("hw-slow", "warning")
    assert lost["health"] is None
    p, q = g0["processes"]
    assert {k: p[k] for k in ("sm_percent", "memory_controller_percent", "cpu_percent")} == {
        "sm_percent": 87.0,
        "memory_controller_percent": 40.0,
        "cpu_percent": 101.5,
    }
    assert (p["rss_bytes"], p["started_at"], p["unavailable"]) == (
        3 * GIB,
        "2026-11-18T11:04:35Z",
        {},
    )
    assert q["sm_percent"] is None
    assert q["unavailable"] == {"sm_percent": "driver too old for nvmlDeviceGetProcessUtilization"}


def test_text_events_ages_and_reasons_from_a_frame():
    text = render(health_frame(), "text")
    events = text.split("\nEvents\n")[1].split("\n\n")[0].splitlines()
    assert events[1:] == [
        "  10:33:20Z  1 GPU-bbbb  ecc_sbe  n/a   single-bit ECC error        info",
        "  11:06:10Z  0 GPU-aaaa  xid      79    GPU has fallen off the bus  critical",
    ]
    procs = text.split("\nProcesses\n")[1].split("\n\n")[0]
    assert "40.0 GiB  87%   40%    101.5%  3.0 GiB  2m" in procs
    assert "  SM % n/a for PID 102: driver too old for nvmlDeviceGetProcessUtilization" in procs
    gpus = text.split("\nGPUs\n")[1].split("\n\n")[0]
    assert "GPU 0 health: XID 79 (critical)" in gpus
    assert "GPU 1 health: hw-slow (warning)" in gpus


def test_no_events_section_where_no_health_was_read():
    assert "\nEvents\n" not in render(frame(), "text")
    empty = replace(health_frame(), events=())
    assert "Events\n  (no GPU health events)" in render(empty, "text")
    assert json.loads(render(frame(), "json"))["events"] == []


def test_hostile_remote_names_in_health_lines_and_events_stay_literal():
    from samples import HOSTILE

    f = health_frame()
    remote = replace(f.gpus[1], host=HOSTILE, uuid=HOSTILE)
    event = replace(XID79, gpu_uuid=HOSTILE, gpu_index=1)
    f = replace(f, gpus=(f.gpus[0], remote), events=(event,))
    for fmt in ("text", "markdown"):
        out = render(f, fmt)
        assert "\x1b" not in out and "\x9b" not in out
    text = render(f, "text")
    events = text.split("\nEvents\n")[1].split("\n\n")[0]
    assert "1 [bold red]x[/] \\x1b[2J\\x1b]0;pwned\\x07" in events  # shown, not obeyed
    assert "GPU [bold red]x[/] \\x1b[2J\\x1b]0;pw…/1 health: XID 79 (critical)" in text
    assert "PCIe gen n/a of n/a, n/a of n/a, n/a replays" in text
    doc = json.loads(render(f, "json"))
    assert doc["events"][0]["gpu_uuid"] == HOSTILE
    jsonschema.validate(doc, SCHEMA)
