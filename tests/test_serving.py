"""Serving figures (KV cache, TTFT, inter-token latency, tokens/s, running, preemptions, prefix
hits, Triton's means) read through a real Prometheus and through a direct scrape, from exporters
that speak the servers' real metric names with exact values; and the reason for each missing
figure, in the Frame, the text export and the JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import jsonschema
import llm_exporters as llm
import pytest
from promstack import REPO, Prometheus

from vramtop import serving
from vramtop.demo.scenario import Scenario
from vramtop.model import ModelReading
from vramtop.profiles import load_all
from vramtop.sources.http import Endpoint
from vramtop.sources.promql import PromSource
from vramtop.sources.scrape import ScrapeSource

SCHEMA = json.loads((REPO / "vramtop/schemas/vramtop-1.schema.json").read_text())
EXACT = 1e-6  # what histogram_quantile's interpolation gives, to float precision
RATE = 0.02  # rates over a 5 s window of 1 s scrapes
TRITON_QUANTILES = (
    "Triton exports latency quantiles only with `--metrics-config summary_latencies=true`; "
    "mean shown"
)


@dataclass
class Stack:
    prom: Prometheus
    exporters: dict[str, llm.Exporter]
    instances: dict[str, str]

    def models(self, name: str) -> dict[str, ModelReading]:
        src = PromSource(
            Endpoint(self.prom.url), list(load_all().values()), False, self.instances[name], "5s"
        )
        try:
            return {m.name: m for m in src.poll().models}
        finally:
            src.close()


SERVERS = {
    "vllm": llm.vllm_current,
    "vllm_legacy": llm.vllm_legacy,
    "sglang": llm.sglang,
    "tgi": llm.tgi,
    "triton": llm.triton,
    "triton_summaries": lambda: llm.triton("bert", summaries=True),
    "llamacpp": llm.llamacpp,
}


@pytest.fixture(scope="module")
def stack(prometheus: Prometheus) -> Iterator[Stack]:
    exporters = {name: llm.Exporter(make()) for name, make in SERVERS.items()}
    targets = {
        name: prometheus.add_target(exp.url, job=f"llm-{name}") for name, exp in exporters.items()
    }
    for t in targets.values():
        prometheus.wait_until_scraped(t, history_s=6)
    yield Stack(prometheus, exporters, {name: t.address for name, t in targets.items()})
    for t in targets.values():
        t.remove()
    for exp in exporters.values():
        exp.stop()


def test_vllm_current_names_every_figure_exact(stack):
    m = stack.models("vllm")["llama"]
    x = m.extras
    assert x["kv_cache_usage_ratio"] == 0.625  # a gauge: exact
    assert x["ttft_p95_seconds"] == pytest.approx(llm.TTFT_P95, rel=EXACT)
    assert x["ttft_p50_seconds"] == pytest.approx(llm.TTFT_P50, rel=EXACT)
    assert x["inter_token_p95_seconds"] == pytest.approx(llm.ITL_P95, rel=EXACT)
    assert x["queue_time_p95_seconds"] == pytest.approx(llm.TTFT_P95, rel=EXACT)
    assert x["running_requests"] == 7 and m.queue_length == 3
    assert x["prompt_tokens_per_second"] == pytest.approx(2000, rel=RATE)
    assert x["generation_tokens_per_second"] == pytest.approx(500, rel=RATE)
    assert x["preemptions_per_second"] == pytest.approx(0.5, rel=RATE)
    assert x["prefix_cache_hit_ratio"] == pytest.approx(0.3, rel=EXACT)
    assert m.latency_p95_seconds == pytest.approx(llm.E2E_P95, rel=EXACT)
    assert not [k for k in m.unavailable if k.startswith("extras.")], m.unavailable


def test_vllm_previous_names_are_aliases_and_missing_figures_say_why(stack):
    m = stack.models("vllm_legacy")["old-llama"]
    x = m.extras
    assert x["kv_cache_usage_ratio"] == 0.25
    assert x["inter_token_p95_seconds"] == pytest.approx(llm.ITL_P95, rel=EXACT)
    assert x["prefix_cache_hit_ratio"] == pytest.approx(0.25, rel=EXACT)
    # The TTFT histogram is there but saw no request; the queue-time one does not exist.
    assert "ttft_p95_seconds" not in x
    assert m.unavailable["extras.ttft_p95_seconds"] == "no requests in the last 5s"
    where = stack.instances["vllm_legacy"]
    assert m.unavailable["extras.queue_time_p95_seconds"] == (
        f"metric `vllm:request_queue_time_seconds` not found in Prometheus for {where}"
    )


def test_sglang_token_usage_is_its_kv_cache_and_ranks_are_not_added(stack):
    m = stack.models("sglang")["qwen"]
    x = m.extras
    assert x["kv_cache_usage_ratio"] == 0.45  # the fuller rank
    assert x["running_requests"] == 4 and m.queue_length == 2
    assert x["prefix_cache_hit_ratio"] == 0.5
    assert x["ttft_p95_seconds"] == pytest.approx(llm.TTFT_P95, rel=EXACT)
    assert x["inter_token_p95_seconds"] == pytest.approx(llm.ITL_P95, rel=EXACT)
    assert x["generation_tokens_per_second"] == pytest.approx(40, rel=RATE)
    assert x["prompt_tokens_per_second"] == pytest.approx(100, rel=RATE)
    assert m.unavailable["extras.preemptions_per_second"] == "SGLang exports no preemption counter"


def test_tgi_batch_tokens_and_no_ttft(stack):
    (m,) = stack.models("tgi").values()
    assert m.name == "llm-tgi"
    x = m.extras
    assert x["running_requests"] == 6 and m.queue_length == 1
    assert x["inter_token_p95_seconds"] == pytest.approx(llm.ITL_P95, rel=EXACT)
    assert x["generation_tokens_per_second"] == pytest.approx(200, rel=RATE)
    assert x["prompt_tokens_per_second"] == pytest.approx(800, rel=RATE)
    assert m.unavailable["extras.ttft_p95_seconds"] == "TGI exports no time-to-first-token metric"
    assert m.unavailable["extras.kv_cache_usage_ratio"] == "TGI exports no KV-cache usage"


def test_llamacpp_gauges_and_no_latency(stack):
    (m,) = stack.models("llamacpp").values()
    assert m.name == "llm-llamacpp" and m.profile == "llamacpp" and m.queue_length == 1
    assert m.extras == {
        "running_requests": 2,
        "kv_cache_usage_ratio": 0.375,
        "prompt_tokens_per_second": 150.5,
        "generation_tokens_per_second": 41.25,
    }
    assert m.unavailable["latency_p95_seconds"] == "llama.cpp exports no latency histogram"


def test_triton_default_metrics_give_means_never_quantiles(stack):
    m = stack.models("triton")["resnet"]
    assert m.latency_p95_seconds is None and m.latency_p50_seconds is None
    assert m.unavailable["latency_p95_seconds"] == TRITON_QUANTILES
    assert m.extras["latency_mean_seconds"] == pytest.approx(0.012, rel=EXACT)
    assert m.extras["queue_time_mean_seconds"] == pytest.approx(0.001, rel=EXACT)
    assert "queue_time_p95_seconds" not in m.extras
    assert serving.fmt("latency_mean_seconds", m.extras["latency_mean_seconds"]) == "~12 ms"


def test_triton_with_summaries_gives_quantiles_and_no_reason(stack):
    m = stack.models("triton_summaries")["bert"]
    assert m.latency_p95_seconds == pytest.approx(0.02, rel=EXACT)
    assert m.latency_p50_seconds == pytest.approx(0.008, rel=EXACT)
    assert m.extras["queue_time_p95_seconds"] == pytest.approx(0.0015, rel=EXACT)
    assert "latency_p95_seconds" not in m.unavailable
    assert "extras.queue_time_p95_seconds" not in m.unavailable


@pytest.mark.parametrize("name", ["vllm", "vllm_legacy", "sglang", "triton", "triton_summaries"])
def test_a_direct_scrape_reads_what_prometheus_reads(stack, name):
    exp = stack.exporters[name]
    src = ScrapeSource([Endpoint(exp.url)], list(load_all().values()), first_gap=1.0)
    try:
        scraped = {m.name: m for m in src.poll().models}
    finally:
        src.close()
    through_prom = stack.models(name)
    assert set(scraped) == set(through_prom)
    for model, want in through_prom.items():
        got = scraped[model]
        assert set(got.extras) == set(want.extras), model
        for key, value in want.extras.items():
            rel = RATE if key.endswith("_per_second") else EXACT
            assert got.extras[key] == pytest.approx(value, rel=rel), key
        assert got.latency_p95_seconds == pytest.approx(want.latency_p95_seconds, rel=EXACT)
        # The same reasons, but where: on the server itself, not in Prometheus.
        assert set(got.unavailable) == set(want.unavailable), model


def test_a_scraped_metric_that_is_missing_names_the_server(stack):
    exp = stack.exporters["vllm_legacy"]
    src = ScrapeSource([Endpoint(exp.url)], list(load_all().values()), first_gap=1.0)
    try:
        m = {m.name: m for m in src.poll().models}["old-llama"]
    finally:
        src.close()
    assert m.unavailable["extras.queue_time_p95_seconds"] == (
        f"metric `vllm:request_queue_time_seconds` not found on {exp.address}"
    )
    idle = m.unavailable["extras.ttft_p95_seconds"]
    assert re.fullmatch(r"no requests in the last \d\.\ds", idle), idle


def test_one_shot_text_and_json_carry_figures_units_means_and_reasons(stack, run_vramtop):
    args = ("--prometheus", stack.prom.url, "--rate-window", "5s")
    sel = "|".join(re.escape(stack.instances[n]) for n in ("vllm", "triton", "vllm_legacy"))
    out = run_vramtop("--once", *args, "--instance", sel, scenario=Scenario())
    assert out.returncode == 0, out.stderr
    text = out.stdout
    serving_block = text.split("\nServing\n", 1)[1].split("\n\n", 1)[0]
    lines = serving_block.splitlines()
    assert lines[0].split()[:5] == ["Model", "KV", "cache", "TTFT", "p50"]
    llama = next(line for line in lines if line.strip().startswith("llama ")).split()
    # KV, TTFT p50, p95, ITL p50, p95, latency mean, queue p95, queue mean, then tokens/s
    assert llama[:10] == ["llama", "62.5%", "56", "ms", "300", "ms", "11", "ms", "35", "ms"]
    assert llama[10:14] == ["n/a", "300", "ms", "n/a"]
    assert re.fullmatch(r"(1\.9|2\.0)k/s", llama[14]) and re.fullmatch(r"\d+/s", llama[15])
    assert llama[16:] == ["7", "0.5/s", "30.0%"]  # running, preemptions, prefix-cache hits
    assert "kv_cache_usage_ratio" not in text, "figures by label, never by raw name"
    assert serving.MEAN_LEGEND in serving_block
    resnet = next(line for line in text.splitlines() if line.strip().startswith("resnet "))
    assert re.search(r" n/a +~12 ms +n/a ", resnet), resnet  # p50, the mean as p95, p99
    assert f"resnet: p95: {TRITON_QUANTILES}" in serving_block
    assert "old-llama: TTFT p95: no requests in the last 5s" in serving_block

    doc = json.loads(run_vramtop("--json", *args, "--instance", sel, scenario=Scenario()).stdout)
    jsonschema.validate(doc, SCHEMA)
    models = {m["name"]: m for m in doc["models"]}
    assert models["llama"]["extras"]["kv_cache_usage_ratio"] == 0.625
    assert models["resnet"]["latency_p95_seconds"] is None
    assert models["resnet"]["unavailable"]["latency_p95_seconds"] == TRITON_QUANTILES
    assert models["old-llama"]["unavailable"]["extras.ttft_p95_seconds"] == (
        "no requests in the last 5s"
    )


def test_the_schema_documents_every_serving_figure_with_its_unit():
    extras = SCHEMA["properties"]["models"]["items"]["properties"]["extras"]["properties"]
    for f in serving.FIGURES:
        assert f.key in extras, f.key
        unit = {"ratio": "ratio 0-1", "seconds": "seconds", "per_second": "per second"}
        assert unit.get(f.unit, "count") in extras[f.key]["description"], f.key


def test_every_profile_figure_is_in_the_registry():
    for p in load_all().values():
        for key in p.series:
            if key.startswith("extras."):
                assert key.removeprefix("extras.") in serving.BY_KEY, (p.name, key)
        for key in p.absent:
            assert key in serving.BY_KEY or key == "latency_p95_seconds", (p.name, key)


def test_backfill_brings_the_serving_series_for_the_drill_down(stack):
    src = PromSource(
        Endpoint(stack.prom.url), list(load_all().values()), False, stack.instances["vllm"], "5s"
    )
    try:
        src.poll()
        series = src.backfill("llama", 20.0)
    finally:
        src.close()
    assert set(serving.HISTORY_KEYS) <= set(series)
    assert series["kv_cache_usage_ratio"][-1][1] == 0.625
    assert len(series["kv_cache_usage_ratio"]) >= 5
    assert series["ttft_p95_seconds"][-1][1] == pytest.approx(llm.TTFT_P95, rel=EXACT)
    assert series["inter_token_p95_seconds"][-1][1] == pytest.approx(llm.ITL_P95, rel=EXACT)
    assert series["generation_tokens_per_second"][-1][1] == pytest.approx(500, rel=RATE)


def test_history_keeps_the_serving_series_bounded():
    from vramtop.history import RAW_POINTS, History
    from vramtop.model import Frame, HostReading, freeze

    history = History(max_series=64)
    extras = freeze({k: 0.5 for k in serving.HISTORY_KEYS} | {"running_requests": 3.0})
    for t in range(2 * RAW_POINTS):
        models = tuple(
            ModelReading(f"m{(t // 100) * 10 + k}", 2**30, extras=extras) for k in range(10)
        )
        history.add(Frame(float(t), HostReading("h"), models=models))
    assert len(history) == 64  # the cap, however many models came and went
    now = 2.0 * RAW_POINTS - 1
    points = history.model("m110", "kv_cache_usage_ratio", 3600.0, now)
    assert len(points) == 100 and points[-1] == (now, 0.5)
    assert history.model("m110", "running_requests", 3600.0, now) == []  # not charted: not kept


@pytest.mark.parametrize(
    ("key", "value", "spaced", "compact"),
    [
        ("kv_cache_usage_ratio", 0.625, "62.5%", "62%"),
        ("ttft_p95_seconds", 0.3, "300 ms", "300ms"),
        ("latency_mean_seconds", 0.012, "~12 ms", "~12ms"),
        ("queue_time_mean_seconds", 0.0003, "~300µs", "~300µs"),
        ("generation_tokens_per_second", 1234.0, "1.2k/s", "1.2k/s"),
        ("running_requests", 7.0, "7", "7"),
        ("prefix_cache_hit_ratio", 0.3, "30.0%", "30%"),
        ("ttft_p95_seconds", None, "n/a", "n/a"),
        ("ttft_p95_seconds", float("nan"), "n/a", "n/a"),
        ("a_users_own_figure", 0.12345, "0.123", "0.123"),
    ],
)
def test_each_figure_is_written_with_its_unit(key, value, spaced, compact):
    assert serving.fmt(key, value) == spaced
    assert serving.fmt(key, value, compact=True) == compact
