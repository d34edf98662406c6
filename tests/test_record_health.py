"""Recordings carry GPU health and health events; replay's "next change" stops where a health
event arrives or a GPU's Health finding changes; recordings from before health still read."""

from __future__ import annotations

import zlib
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from vramtop.feeds.replay import ReplayFeed
from vramtop.model import Frame, GpuHealth, GpuReading, HealthEvent, HostReading
from vramtop.record import Recorder, Recording
from vramtop.record.blocks import KEY, block, session_start
from vramtop.record.codec import dump, full

T0 = 1795000000.0
FINE = GpuHealth(
    throttle_reasons=(),
    performance_state=0,
    ecc_mode=True,
    ecc_corrected_volatile=0,
    remapped_rows_pending=False,
    pcie_link_width=16,
    pcie_link_width_max=16,
    nvlink_links=18,
    nvlink_errors=MappingProxyType({"replay": 0, "crc_data": 2**40 + 1}),
    unavailable=MappingProxyType({"retired_pages_sbe": "not supported on this GPU"}),
)
HOT = replace(FINE, throttle_reasons=("sw_power_cap", "hw_thermal"), performance_state=2)
XID13 = HealthEvent(T0 + 6, "GPU-a", 0, "xid", 13, "graphics engine exception", "warning")
SBE = HealthEvent(T0 + 16, "GPU-b", 1, "ecc_sbe", None, "single-bit ECC error", "info")


def frames() -> list[Frame]:
    out = []
    for k in range(11):
        events: tuple[HealthEvent, ...] = ()
        if 3 <= k < 9:
            events = (XID13,)
        if k == 8:
            events = (XID13, SBE)
        if k >= 9:
            events = (SBE,)  # the bounded list let XID 13 go: GPU 0 is ok again
        hot = k >= 6
        gpus = (
            GpuReading(0, "GPU-a", "H100", utilization_percent=float(k), health=FINE),
            GpuReading(1, "GPU-b", "H100", utilization_percent=50.0, health=HOT if hot else FINE),
        )
        out.append(Frame(T0 + 2 * k, HostReading("box"), gpus, events=events))
    return out


def test_health_and_events_round_trip_and_next_change_stops_at_them(tmp_path):
    path = tmp_path / "h.rec"
    made = frames()
    with Recorder(path, key_every=4) as rec:
        for f in made:
            rec.append(f)
    with Recording.open(path) as rec:
        got = [rec.frame(i) for i in range(len(rec))]
        assert got == made
        assert got[8].events == (XID13, SBE)
        assert got[6].gpus[1].health == HOT
        assert dict(got[0].gpus[0].health.nvlink_errors) == {"replay": 0, "crc_data": 2**40 + 1}
        stops, i = [], 0
        while (i := rec.index_of_next_alert_change(i)) is not None:
            stops.append(i)
        # 3: XID 13 arrives; 6: GPU 1 throttles (thermal); 8: an SBE arrives;
        # 9: XID 13 leaves the list, GPU 0's finding is ok again.
        assert stops == [3, 6, 8, 9]
        assert rec.index_of_previous_alert_change(10) == 9
        assert rec.index_of_previous_alert_change(3) is None


def test_the_replay_key_moves_to_the_next_health_change(tmp_path):
    path = tmp_path / "h.rec"
    with Recorder(path) as rec:
        for f in frames():
            rec.append(f)
    with Recording.open(path) as rec:
        feed = ReplayFeed(rec, start=0)
        feed.start(lambda message: None)
        assert feed.run("alert_change", 1) is None and feed.position == 3
        feed.run("alert_change", 1)
        assert feed.position == 6
        feed.go(9)
        assert feed.run("alert_change", 1) == "No later change in the alerts or GPU health"
        assert feed.position == 9
        feed.stop()


def test_a_recording_from_before_health_still_reads(tmp_path):
    """A frame as a vramtop without health wrote it: no ``health``, no ``events``."""
    old = frames()[8]
    obj = full(Frame, old)
    del obj["events"]
    for g in obj["gpus"]:
        del g["health"]
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    payload = z.compress(dump(obj)) + z.flush(zlib.Z_SYNC_FLUSH)
    path = Path(tmp_path / "old.rec")
    path.write_bytes(session_start("box", old.time, 2.0) + block(KEY, old.time, 0, payload))
    with Recording.open(path) as rec:
        (f,) = [rec.frame(i) for i in range(len(rec))]
    assert f.events == () and [g.health for g in f.gpus] == [None, None]
    assert f == replace(old, events=(), gpus=tuple(replace(g, health=None) for g in old.gpus))
