"""The demo host: production code paths over simulated hardware and servers, with incidents."""

from __future__ import annotations

import pytest

from vramtop.config import Settings
from vramtop.demo.serving import INCIDENTS, DemoAlertSource
from vramtop.wiring import build_collector

T0 = 1_795_000_200.0 - (1_795_000_200.0 % 600)  # the start of a demo 10-minute cycle


def test_every_incident_fires_on_its_timetable():
    def at(offset: float) -> dict[str, str]:
        return {a.name: a.state for a in DemoAlertSource(lambda: T0 + offset).poll().alerts}

    assert at(150)["VRAMExhausted"] == "firing"  # the squeeze peaks at a quarter period
    assert "ModelQueueBacklog" not in at(150)
    assert at(205)["ModelQueueBacklog"] == "pending" and at(260)["ModelQueueBacklog"] == "firing"
    slow = INCIDENTS[0]
    start = T0 - (T0 - slow.offset) % slow.period + slow.period
    assert DemoAlertSource(lambda: start + 60).poll().alerts[0].name == "SlowAPIResponse"
    assert not {"VRAMExhausted", "ModelQueueBacklog"} & set(at(500))


@pytest.fixture
def collector_at():
    made = []

    def make(offset: float):
        c = build_collector(Settings(), {}, demo=True, clock=lambda: T0 + offset)
        made.append(c)
        return c

    yield make


def test_demo_frame_is_marked_and_full(collector_at):
    frame = collector_at(260).collect()
    assert frame.demo and frame.host.hostname == "demo-gpu-host"
    assert len(frame.gpus) == 4 and all(s.state == "ok" for s in frame.sources)
    models = {m.name: m for m in frame.models}
    assert models["yolov10n"].queue_length > 50, "the backlog incident shows in the queue"
    assert models["llama-3.1-70b"].processes == (4101, 4102)
    assert models["llama-3.1-70b"].latency_p95_seconds == pytest.approx(1.4, rel=0.05)
    assert {a.name for a in frame.alerts} == {"ModelQueueBacklog"}


def test_vram_squeeze_matches_its_alert(collector_at):
    frame = collector_at(150).collect()
    gpu3 = frame.gpus[3]
    assert gpu3.memory_fraction > 0.95
    assert [a.name for a in frame.alerts if a.state == "firing"] == ["VRAMExhausted"]
