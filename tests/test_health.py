"""vramtop.health: throttle words, the XID table (as shipped), a GPU's worst finding, and the
critical findings as nvml alerts."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from vramtop.health import (
    EVENT_WINDOW,
    critical_alerts,
    decode_throttle,
    finding,
    findings,
    xid_info,
    xid_table,
)
from vramtop.model import Frame, GpuHealth, GpuReading, HealthEvent, HostReading

REPO = Path(__file__).resolve().parents[1]
T = 1_800_000_000.0
UUID = "GPU-0000-aaaa"


HEALTHY = GpuHealth()


def gpu(health: GpuHealth | None = HEALTHY, **kw) -> GpuReading:
    return GpuReading(
        index=kw.pop("index", 0), uuid=kw.pop("uuid", UUID), name="H100", health=health, **kw
    )


def event(kind: str = "xid", code: int | None = 79, t: float = T, **kw) -> HealthEvent:
    info = xid_info(code) if code is not None else None
    return HealthEvent(
        time=t,
        gpu_uuid=kw.get("uuid", UUID),
        gpu_index=kw.get("index", 0),
        kind=kind,
        code=code,
        meaning=info.meaning if info else "",
        severity=kw.get("severity", info.severity if info else "critical"),
    )


def test_throttle_bits_decode_to_words_in_bit_order():
    assert decode_throttle(0) == ()
    assert decode_throttle(0x1FF) == (
        "idle",
        "applications_clocks",
        "sw_power_cap",
        "hw_slowdown",
        "sync_boost",
        "sw_thermal",
        "hw_thermal",
        "hw_power_brake",
        "display_clocks",
    )
    assert decode_throttle(0x44) == ("sw_power_cap", "hw_thermal")
    assert decode_throttle(0x600 | 0x4) == ("sw_power_cap", "board_limit", "reliability")
    assert decode_throttle(0x1800 | 0x40) == ("hw_thermal", "0x1800")  # bits NVML adds later


def test_xid_table_holds_the_common_codes():
    table = xid_table()
    for code in (13, 31, 43, 45, 48, 61, 62, 63, 64, 68, 74, 79, 92, 94, 95, 119, 120):
        assert code in table, code
        assert table[code].meaning and table[code].severity in ("critical", "warning", "info")
    assert xid_info(79).meaning == "GPU has fallen off the bus" and xid_info(79).critical
    assert xid_info(48).critical and xid_info(95).critical and xid_info(64).critical
    assert not xid_info(13).critical and not xid_info(94).critical and not xid_info(31).critical
    assert xid_info(45).severity == "info"
    assert xid_info(4242) == type(xid_info(79))("XID 4242", "warning", False)


def test_a_healthy_gpu_is_ok_and_one_never_read_is_unknown():
    assert finding(gpu()) == ("ok", "ok")
    assert finding(gpu(None)) == ("–", "unknown")
    assert finding(
        gpu(GpuHealth(throttle_reasons=("idle",), pcie_link_gen=1, pcie_link_gen_max=5))
    ) == (
        "ok",
        "ok",
    )


@pytest.mark.parametrize(
    ("health", "kw", "want"),
    [
        (GpuHealth(throttle_reasons=("hw_thermal",)), {}, ("thermal", "warning")),
        (GpuHealth(throttle_reasons=("sw_thermal",)), {}, ("thermal", "warning")),
        (GpuHealth(throttle_reasons=("sw_power_cap",)), {}, ("pwr-cap", "info")),
        (GpuHealth(throttle_reasons=("hw_slowdown",)), {}, ("hw-slow", "warning")),
        (GpuHealth(throttle_reasons=("hw_power_brake",)), {}, ("pwr-brake", "warning")),
        (GpuHealth(ecc_uncorrected_volatile=1), {}, ("ECC DBE", "critical")),
        (GpuHealth(ecc_uncorrected_aggregate=3), {}, ("ok", "ok")),  # from before this boot
        (GpuHealth(remapped_rows_failure=True), {}, ("remap fail", "critical")),
        (GpuHealth(remapped_rows_pending=True), {}, ("remap pending", "warning")),
        (GpuHealth(retired_pages_pending=True), {}, ("retire pending", "warning")),
        (GpuHealth(pcie_link_width=8, pcie_link_width_max=16), {}, ("PCIe x8", "warning")),
        # A link downshifts its generation at idle: only under load is it a finding.
        (
            GpuHealth(pcie_link_gen=3, pcie_link_gen_max=5),
            {"utilization_percent": 90.0},
            ("PCIe gen3", "warning"),
        ),
        (
            GpuHealth(pcie_link_gen=3, pcie_link_gen_max=5),
            {"utilization_percent": 5.0},
            ("ok", "ok"),
        ),
        (GpuHealth(pcie_link_gen=3, pcie_link_gen_max=5), {}, ("ok", "ok")),
        (None, {"state": "lost"}, ("lost", "critical")),
    ],
)
def test_each_finding(health, kw, want):
    assert finding(gpu(health, **kw)) == want


def test_the_worst_finding_wins_and_all_are_listed_worst_first():
    h = GpuHealth(
        throttle_reasons=("sw_power_cap", "hw_thermal"),
        remapped_rows_pending=True,
        ecc_uncorrected_volatile=2,
        pcie_link_width=8,
        pcie_link_width_max=16,
    )
    g = gpu(h)
    assert findings(g, [event(code=13)], now=T) == [
        ("ECC DBE", "critical"),
        ("remap pending", "warning"),
        ("XID 13", "warning"),
        ("thermal", "warning"),
        ("PCIe x8", "warning"),
        ("pwr-cap", "info"),
    ]
    assert finding(g, [event(code=79)], now=T) == ("XID 79", "critical")


def test_events_count_for_their_own_gpu_only_and_warnings_fade():
    other = event(code=79, uuid="GPU-other", index=1)
    assert finding(gpu(), [other], now=T) == ("ok", "ok")
    old = T - EVENT_WINDOW - 1
    assert finding(gpu(), [event(code=13, t=old)], now=T) == ("ok", "ok")
    assert finding(gpu(), [event(code=13, t=T - 5)], now=T) == ("XID 13", "warning")
    # A critical XID stays a finding for as long as the frame keeps the event.
    assert finding(gpu(), [event(code=79, t=old)], now=T) == ("XID 79", "critical")
    assert finding(gpu(), [event("ecc_dbe", None)], now=T) == ("ECC DBE", "critical")
    assert finding(gpu(), [event("ecc_sbe", None, severity="info")], now=T) == ("ok", "ok")
    assert finding(gpu(), [event("gpu_lost", None)], now=T) == ("lost", "critical")
    # Matched by index where a UUID is not known (this machine's GPUs only).
    no_uuid = replace(event(code=79), gpu_uuid=None)
    assert finding(gpu(), [no_uuid], now=T) == ("XID 79", "critical")
    assert finding(gpu(host="far-away"), [no_uuid], now=T) == ("ok", "ok")


def frame(*gpus: GpuReading, events: tuple[HealthEvent, ...] = ()) -> Frame:
    return Frame(time=T, host=HostReading("box"), gpus=gpus, events=events)


def test_critical_findings_become_nvml_alerts():
    gpus = (
        gpu(index=0, uuid="GPU-a"),
        gpu(GpuHealth(ecc_uncorrected_volatile=2), index=1, uuid="GPU-b"),
        gpu(
            GpuHealth(remapped_rows_failure=True, throttle_reasons=("hw_thermal",)),
            index=2,
            uuid="GPU-c",
        ),
        gpu(None, index=3, uuid="GPU-d", state="lost"),
        gpu(
            GpuHealth(throttle_reasons=("hw_thermal",), remapped_rows_pending=True),
            index=4,
            uuid="GPU-e",
        ),
    )
    events = (
        event(code=13, uuid="GPU-a", index=0, t=T - 30),  # not critical: no alert
        event(code=79, uuid="GPU-a", index=0, t=T - 20),
        event(code=79, uuid="GPU-a", index=0, t=T - 10),  # the same cause again: one alert
        event(code=48, uuid="GPU-a", index=0, t=T - 5),
        event("gpu_lost", None, uuid="GPU-d", index=3, t=T - 3),
    )
    alerts = critical_alerts(frame(*gpus, events=events))
    got = sorted((a.name, a.labels["gpu"], a.labels.get("xid"), a.active_since) for a in alerts)
    assert got == [
        ("GpuEccUncorrectable", "1", None, None),
        ("GpuLost", "3", None, T - 3),
        ("GpuRowRemapFailure", "2", None, None),
        ("GpuXid", "0", "48", T - 5),
        ("GpuXid", "0", "79", T - 20),
    ]
    for a in alerts:
        assert (a.source, a.severity, a.state) == ("nvml", "critical", "firing")
        assert a.labels["uuid"].startswith("GPU-") and a.summary.startswith(
            f"GPU {a.labels['gpu']}: "
        )
    xid79 = next(a for a in alerts if a.labels.get("xid") == "79")
    assert xid79.summary == "GPU 0: XID 79, GPU has fallen off the bus"
    assert (
        critical_alerts(frame(gpu(), gpu(GpuHealth(throttle_reasons=("hw_thermal",)), index=1)))
        == ()
    )


def test_a_remote_gpu_alert_names_its_host():
    g = gpu(GpuHealth(remapped_rows_failure=True), host="gpu-07")
    (a,) = critical_alerts(frame(g))
    assert dict(a.labels) == {"gpu": "0", "uuid": UUID, "instance": "gpu-07"}


def test_a_built_wheel_ships_the_xid_table(tmp_path):
    # Not editable: the table must be inside the wheel, where the installed vramtop reads it.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("vramtop-*.whl")
    with zipfile.ZipFile(wheel) as z:
        text = z.read("vramtop/data/xid.toml").decode()
    assert "[79]" in text and "fallen off the bus" in text
