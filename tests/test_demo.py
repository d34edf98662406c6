"""The demo host: production code paths over simulated hardware and servers, with incidents."""

from __future__ import annotations

import math

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


CALM, KV_SQUEEZE = 30, 390  # no incident at all; the KV-cache squeeze at its height
# A first reading's rates come from two scrapes 0.2 s apart while the simulated counters grow
# with the wall clock: on a busy machine a few tens of ms of HTTP jitter move them that much.
# Gauges and quantiles are compared exactly.
RATE = 0.35


def test_kv_cache_squeeze_preempts_and_slows_first_tokens(collector_at):
    calm = {m.name: m for m in collector_at(CALM).collect().models}["llama-3.1-70b"]
    frame = collector_at(KV_SQUEEZE).collect()
    hot = {m.name: m for m in frame.models}["llama-3.1-70b"]
    assert hot.extras["kv_cache_usage_ratio"] == 0.98
    assert 0.5 <= calm.extras["kv_cache_usage_ratio"] <= 0.6
    # The planted histograms give the configured p95 back exactly (see demo/loads.py).
    assert hot.extras["ttft_p95_seconds"] == pytest.approx(0.35 + 2.3, rel=1e-6)
    assert calm.extras["ttft_p95_seconds"] == pytest.approx(0.35, rel=1e-6)
    # Rates between the first reading's two scrapes, a fraction of a second apart.
    assert hot.extras["preemptions_per_second"] == pytest.approx(4.0, rel=RATE)
    assert calm.extras["preemptions_per_second"] == 0
    assert hot.queue_length == 42 and calm.queue_length == 2
    assert {a.name: a.state for a in frame.alerts} == {"KVCacheSaturated": "firing"}


def test_every_llm_server_reports_its_serving_figures(collector_at):
    """SGLang's tokens/s is not 0 while it serves; llama.cpp's row is read from its --metrics,
    its model named by the scrape job as Prometheus would name it."""
    models = {m.name: m for m in collector_at(CALM).collect().models}
    qwen = models["Qwen/Qwen2.5-7B-Instruct"]
    wave = 1 + 0.15 * math.sin((T0 + CALM) / 30.0)
    assert qwen.requests_per_second == pytest.approx(18.0 * wave, rel=RATE)
    tokens = qwen.extras["generation_tokens_per_second"]
    assert tokens == pytest.approx(18.0 * wave * 180, rel=RATE)  # 180 tokens an answer
    assert qwen.extras["kv_cache_usage_ratio"] == round(
        0.41 + 0.06 * math.sin((T0 + CALM) / 60.0), 4
    )
    llama = models["Mistral-7B-Instruct-v0.3-Q4_K_M"]
    assert llama.profile == "llamacpp" and llama.processes == (4300,)
    assert llama.queue_length == 0 and llama.extras["running_requests"] == 2
    assert llama.extras["kv_cache_usage_ratio"] == round(
        0.23 + 0.04 * math.sin((T0 + CALM) / 25.0), 4
    )
    assert llama.extras["generation_tokens_per_second"] > 0


def test_backfill_is_the_timeline_the_live_view_reads(collector_at):
    """The demo answers backfill from its own timeline: its last point is what the live scrape
    reads at that moment, and the past holds the incidents (the charts open full)."""
    from vramtop.demo.backfill import history

    offset = KV_SQUEEZE
    collector = collector_at(offset)
    frame = collector.collect()
    end = T0 + offset
    for m in frame.models:
        past = history(m.name, 600, end)
        assert past, m.name
        assert past["vram_bytes"][-1] == (end, float(m.vram_bytes)), m.name
        for key, points in past.items():
            t, value = points[-1]
            assert t == end and points[0][0] == end - 600, (m.name, key)
            live = getattr(m, key, None) if key != "vram_bytes" else m.vram_bytes
            live = m.extras.get(key, live)
            if live is None:
                continue  # a figure this profile does not read
            if key.endswith("per_second"):  # a rate between two scrapes in real time
                assert live == pytest.approx(value, rel=RATE, abs=1e-9), (m.name, key)
            else:
                assert live == pytest.approx(value, rel=1e-6), (m.name, key)
    # Through the collector, as the model drill-down asks: the hour holds six squeezes.
    hour = collector.backfill("llama-3.1-70b", 3600)
    assert len(hour["kv_cache_usage_ratio"]) == 241
    assert max(v for _, v in hour["kv_cache_usage_ratio"]) == 0.98
    assert max(v for _, v in hour["preemptions_per_second"]) == 4.0
    assert min(v for _, v in hour["preemptions_per_second"]) == 0.0
    assert collector.backfill("no-such-model", 3600) == {}
    week = history("yolov10n", 7 * 86400, end)["queue_length"]
    assert len(week) == 241 and week[0][0] == end - 86400  # 24 h back at most
