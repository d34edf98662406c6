"""The demo host's GPU health incidents, on the demo's clock: GPU 0 power-capped under load,
GPU 1's corrected ECC count rising, GPU 2 a remapped row pending, GPU 3 an XID 13 every few
minutes, the first before the demo starts so a one-shot frame shows it."""

from __future__ import annotations

import json
import math

from vramtop.config import Settings
from vramtop.demo.host import CAP_AT, SBE_EVERY, XID_EVERY, XID_FIRST
from vramtop.health import finding
from vramtop.wiring import build_collector

T0 = 1_795_000_000.0


def test_health_incidents_follow_the_demo_clock():
    now = [T0]
    collector = build_collector(Settings(), {}, demo=True, clock=lambda: now[0])
    try:
        check_incidents(collector, now)
    finally:
        collector.close()


def check_incidents(collector, now: list[float]) -> None:
    first = collector.collect()
    assert [(e.gpu_index, e.kind, e.code, e.time) for e in first.events] == [
        (3, "xid", 13, T0 + XID_FIRST)
    ]
    words = [finding(g, first.events, first.time)[0] for g in first.gpus]
    assert words[2:] == ["remap pending", "XID 13"]
    g1 = first.gpus[1].health
    assert g1 is not None and g1.ecc_corrected_volatile == 37 and g1.ecc_uncorrected_volatile == 0

    # Ten minutes on: 20 more corrected errors, a second XID 13, the first one aged out of
    # the Health word (a non-critical XID colours a GPU for ten minutes).
    now[0] = T0 + 600
    later = collector.collect()
    assert later.gpus[1].health.ecc_corrected_volatile == 37 + int(600 / SBE_EVERY)
    assert [e.time for e in later.events] == [T0 + XID_FIRST, T0 + XID_FIRST + XID_EVERY]
    assert finding(later.gpus[3], later.events, later.time) == ("XID 13", "warning")
    # None of these is critical: no nvml alert.
    assert not [a for a in later.alerts if a.source == "nvml"]

    # Under load GPU 0 runs into its power cap.
    busy = next(T0 + s for s in range(0, 120) if 55 + 35 * math.sin((T0 + s) / 13.0) > CAP_AT + 1)
    now[0] = busy
    loaded = collector.collect()
    g0 = loaded.gpus[0]
    assert g0.health.throttle_reasons == ("sw_power_cap",) and g0.power_watts == 699.0
    assert finding(g0, loaded.events, loaded.time) == ("pwr-cap", "info")


def test_demo_once_shows_health_and_an_event(run_vramtop):
    out = run_vramtop("--demo", "--once", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    findings = [g["health"]["finding"] for g in doc["gpus"]]
    assert findings[2:] == ["remap pending", "XID 13"]
    assert [(e["gpu_index"], e["kind"], e["code"]) for e in doc["events"]] == [(3, "xid", 13)]
    text = run_vramtop("--demo", "--once").stdout
    assert "\nEvents\n" in text and "graphics engine exception" in text
