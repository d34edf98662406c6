"""The simulated exporter's exposition over time: counters integrate their rates from the
moment of each change, whatever is cached between scrapes. Read back with prometheus_client's
parser, as a scraper would."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from vramtop.demo.exporter import GIB, GpuLoad, ModelLoad, SimulatedExporter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def samples(exporter: SimulatedExporter) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(exporter.render())
        for s in fam.samples
    }


def value(exporter: SimulatedExporter, name: str, **labels: str) -> float:
    want = tuple(sorted(labels.items()))
    found = [v for (n, lab), v in samples(exporter).items() if n == name and set(want) <= set(lab)]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_counters_grow_at_their_rate_and_go_on_from_their_value_after_a_change():
    clock = Clock()
    e = SimulatedExporter("vllm", [ModelLoad("m", 10.0, 0.2, 0.4, 0.5)], gpus=[], clock=clock)
    name = "vllm:request_success_total"
    assert value(e, name, model_name="m", finished_reason="stop") == 0.0
    clock.now += 10
    first = value(e, name, model_name="m", finished_reason="stop")
    assert first > 0
    clock.now += 10  # the cached lines still follow the clock
    assert value(e, name, model_name="m", finished_reason="stop") == 2 * first
    e.update_model("m", requests_per_second=30.0)
    at_change = value(e, name, model_name="m", finished_reason="stop")
    assert at_change == 2 * first  # nothing lost or added at the change
    clock.now += 10
    after = value(e, name, model_name="m", finished_reason="stop")
    assert after == pytest.approx(at_change + 3 * first)
    buckets = sorted(
        (float(dict(lab)["le"]), v)
        for (n, lab), v in samples(e).items()
        if n == "vllm:e2e_request_latency_seconds_bucket"
    )
    counts = [v for _, v in buckets]
    assert counts == sorted(counts) and counts[-1] > 0  # cumulative, as a histogram is


def test_gauges_follow_a_change_of_the_gpus():
    clock = Clock()
    gpu = GpuLoad(index=0, uuid="GPU-1", memory_used_bytes=40 * GIB, instance="h1")
    e = SimulatedExporter("dcgm", gpus=[gpu], clock=clock)
    assert value(e, "DCGM_FI_DEV_FB_USED", UUID="GPU-1") == 40 * 1024
    e.set_gpus([GpuLoad(index=0, uuid="GPU-1", memory_used_bytes=50 * GIB, instance="h1")])
    assert value(e, "DCGM_FI_DEV_FB_USED", UUID="GPU-1") == 50 * 1024
