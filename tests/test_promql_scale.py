"""What keeps a fleet's refresh cheap, against a real Prometheus: model-level quantiles computed
here from one bucket query per histogram must be exactly Prometheus's histogram_quantile, a GPU
that DCGM and vramtop's exporter both report is asked for once per figure, and the slow health
counters are asked every 30 s."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest
from promstack import Prometheus, StaticExposition

from vramtop.demo.exporter import GIB, GpuLoad, ModelLoad, SimulatedExporter
from vramtop.profiles import load_all
from vramtop.sources.http import Endpoint
from vramtop.sources.promql import PromSource
from vramtop.sources.promql_syntax import instance_selector
from vramtop.sources.promquantile import quantile
from vramtop.sources.queries import BUCKETS, field_queries, model_queries

LLM = {"ttft_p95": 0.3, "kv_cache_usage": 0.42, "itl_p95": 0.04, "queue_time_p95": 0.2}
MIB = 2**20


@pytest.fixture(scope="module")
def served(prometheus: Prometheus) -> Iterator[dict[str, str]]:
    gpus = dict(memory_total_bytes=80 * GIB, power_limit_watts=700.0)
    exporters = {
        "vllm": SimulatedExporter(
            "vllm",
            [
                ModelLoad("llama", 10.0, 0.5, 1.5, 3.0, 0.05, 4, **LLM),
                ModelLoad("idle", 0.0, 0.5, 1.5, 3.0, 0.0, 0, **LLM),
            ],
        ),
        # vLLM before 0.10: ITL under its old name, read through the same bucket query
        "legacy": SimulatedExporter(
            "vllm", [ModelLoad("old", 4.0, 0.2, 0.6, 0.9, 0.0, 1, **LLM)], legacy=True
        ),
        # the same two GPUs as vramtop's exporter reports them, with other figures, so that
        # which one wins shows; a third GPU only vramtop's exporter sees
        "dcgm": SimulatedExporter(
            "dcgm",
            gpus=[
                GpuLoad(
                    0,
                    "GPU-5ca1-0000",
                    memory_used_bytes=30 * GIB,
                    utilization=0.75,
                    temperature_c=71,
                    power_watts=400,
                    **gpus,
                ),
                GpuLoad(1, "GPU-5ca1-0001", memory_used_bytes=2 * GIB, temperature_c=40, **gpus),
            ],
        ),
        "vramtop": SimulatedExporter(
            "vramtop",
            gpus=[
                GpuLoad(
                    0,
                    "GPU-5ca1-0000",
                    memory_used_bytes=30 * GIB + 1,
                    utilization=0.5,
                    temperature_c=60,
                    power_watts=300,
                    memory_total_bytes=85 * GIB,
                ),
                GpuLoad(
                    1,
                    "GPU-5ca1-0001",
                    memory_used_bytes=2 * GIB + 1,
                    temperature_c=30,
                    memory_total_bytes=85 * GIB,
                ),
                GpuLoad(
                    2,
                    "GPU-5ca1-0002",
                    memory_used_bytes=5 * GIB,
                    utilization=0.25,
                    temperature_c=33,
                    power_watts=150,
                    memory_total_bytes=85 * GIB,
                ),
            ],
        ),
    }
    targets = {
        name: prometheus.add_target(e.start(), job=f"scale-{name}") for name, e in exporters.items()
    }
    for t in targets.values():
        prometheus.wait_until_scraped(t, history_s=6)
    yield {name: t.address for name, t in targets.items()}
    for t in targets.values():
        t.remove()
    for e in exporters.values():
        e.stop()


def _source(
    prometheus: Prometheus, instance: str, profiles: str, at: float | None = None
) -> PromSource:
    """Forced profiles; evaluated at ``at``, else at the time of each refresh."""
    every = load_all()
    chosen = [every[p] for p in profiles.split(",")]
    clock = time.time if at is None else (lambda: at)
    return PromSource(Endpoint(prometheus.url), chosen, True, instance, "5s", clock=clock)


def _prometheus_quantile(prometheus: Prometheus, expr: str, at: float) -> dict[str, float | None]:
    data = prometheus._api("/api/v1/query", query=expr, time=f"{at:.3f}")
    out: dict[str, float | None] = {}
    for r in data["result"]:
        value = float(r["value"][1])
        out[r["metric"]["model_name"]] = None if math.isnan(value) else value
    return out


@pytest.mark.parametrize("name", ["vllm", "legacy"])
def test_quantiles_computed_here_are_prometheus_histogram_quantile(prometheus, served, name):
    """Every model-level quantile of the vLLM profile, from the bucket queries, equals what
    histogram_quantile answers at the same evaluation time, to the last bit."""
    at = time.time() - 1
    vllm = load_all()["vllm"]
    sel = instance_selector(served[name])
    expected: dict[str, dict[str, float | None]] = {}
    for q in model_queries(vllm, sel, "5s"):
        if q.quantile is not None and q.key != "latency.by_instance":
            key = f"latency.{q.quantile}" if q.key == "latency" else q.key
            expected[key] = _prometheus_quantile(prometheus, q.expr, at)
    src = _source(prometheus, served[name], "vllm", at)
    try:
        reading = src.poll()
    finally:
        src.close()
    assert reading.note == ""
    got = {m.name: m for m in reading.models}
    assert set(got) == ({"llama", "idle"} if name == "vllm" else {"old"})
    compared = 0
    for key, per_model in expected.items():
        for model, want in per_model.items():
            m = got[model]
            if key.startswith("latency."):
                field = {"0.5": "latency_p50_seconds", "0.95": "latency_p95_seconds"}.get(
                    key.split(".", 1)[1], "latency_p99_seconds"
                )
                have = getattr(m, field)
            else:
                have = m.extras.get(key.removeprefix("extras."))
            assert have == want, (model, key)
            compared += want is not None
    # p50/p95/p99, TTFT p50/p95, ITL p50/p95, queue time p95 of each model with requests
    assert compared == 8
    if name == "vllm":
        idle = got["idle"]
        assert idle.latency_p95_seconds is None
        assert idle.unavailable["latency_p95_seconds"] == "no requests in the last 5s"
        assert got["llama"].latency_p95_seconds == pytest.approx(1.5, rel=1e-9)


def test_a_histogram_is_one_bucket_query_and_one_request(prometheus, served):
    vllm = load_all()["vllm"]
    queries = model_queries(vllm, "s", "5s", buckets=True)
    buckets = [q for q in queries if q.key == BUCKETS]
    # e2e latency, TTFT, ITL (under either name) and queue time: four, not eight
    assert [sorted({t[0] for t in q.targets}) for q in buckets] == [
        ["latency"],
        ["extras.ttft_p50_seconds", "extras.ttft_p95_seconds"],
        ["extras.inter_token_p50_seconds", "extras.inter_token_p95_seconds"],
        ["extras.queue_time_p95_seconds"],
    ]
    assert buckets[0].expr == (
        "sum by (le, model_name) (rate(vllm:e2e_request_latency_seconds_bucket{s}[5s]))"
    )
    assert buckets[0].targets == tuple(("latency", q, 1.0) for q in (0.5, 0.95, 0.99))
    assert buckets[2].expr == (
        'label_replace(sum by (le, model_name) (rate(vllm:inter_token_latency_seconds_bucket{s}[5s])), "__vramtop_alt", "0", "", "") or '  # noqa: E501
        'label_replace(sum by (le, model_name) (rate(vllm:time_per_output_token_seconds_bucket{s}[5s])), "__vramtop_alt", "1", "", "")'  # noqa: E501
    )
    assert all(q.heavy for q in buckets)
    # the light figures; each replica's p95 and the buckets: two requests whatever the size
    src = _source(prometheus, served["vllm"], "vllm")
    try:
        assert src.poll().queries == 2
    finally:
        src.close()


def test_a_gpu_both_exporters_report_is_asked_for_once_per_figure(prometheus, served):
    instance = f"{served['dcgm']}|{served['vramtop']}"
    src = _source(prometheus, instance, "dcgm,vramtop_gpus")
    try:
        gpus = {g.uuid: g for g in src.poll().gpus}
    finally:
        src.close()
    both, cool, own = gpus["GPU-5ca1-0000"], gpus["GPU-5ca1-0001"], gpus["GPU-5ca1-0002"]
    # DCGM's figures win (the first profile's), vramtop's fill what DCGM lacks
    assert (both.memory_used_bytes, both.temperature_c, both.power_watts) == (30 * GIB, 71, 400)
    assert both.utilization_percent == 75.0 and both.memory_total_bytes == 80 * GIB
    assert (cool.memory_used_bytes, cool.temperature_c) == (2 * GIB, 40)
    # what only vramtop's exporter sees is all its own
    assert (own.memory_used_bytes, own.temperature_c, own.power_watts) == (5 * GIB, 33, 150)
    assert (own.utilization_percent, own.memory_total_bytes) == (25.0, 85 * GIB)
    # and what was asked of vramtop's exporter: the shared GPUs' total only, the third's all
    every = load_all()
    sel = instance_selector(instance)
    asked: dict[str, set[str]] = {}
    own, *figures = field_queries(every["vramtop_gpus"], sel, "5s", [every["dcgm"]])
    for q in figures:
        for r in prometheus.query(q.expr):
            asked.setdefault(r.labels["gpu_uuid"], set()).add(r.labels["__name__"])
    # and each GPU's own labels once, with no figure
    assert sorted(r.labels["gpu_uuid"] for r in prometheus.query(own.expr)) == sorted(gpus)
    shared = {"vramtop_gpu_memory_total_bytes"}
    assert asked["GPU-5ca1-0000"] == asked["GPU-5ca1-0001"] == shared
    assert asked["GPU-5ca1-0002"] == {
        "vramtop_gpu_memory_used_bytes",
        "vramtop_gpu_memory_total_bytes",
        "vramtop_gpu_utilization_ratio",
        "vramtop_gpu_temperature_celsius",
        "vramtop_gpu_power_watts",
    }


@pytest.mark.parametrize(
    ("q", "buckets", "want"),
    [
        (0.5, {1.0: 90.0, 5.0: 100.0, math.inf: 100.0}, 1.0 * (50 / 90)),
        (0.95, {1.0: 90.0, 5.0: 100.0, math.inf: 100.0}, 1.0 + 4.0 * (5 / 10)),
        (0.99, {1.0: 0.0, 2.0: 0.0, math.inf: 10.0}, 2.0),  # in +Inf: the last finite bound
        (0.5, {-1.0: 5.0, 1.0: 10.0, math.inf: 10.0}, -1.0),  # first bound <= 0: itself
        (0.5, {1.0: 0.0, math.inf: 0.0}, None),  # no observations: NaN in Prometheus
        (0.5, {1.0: 5.0, 2.0: 10.0}, None),  # no +Inf bucket
        (0.5, {math.inf: 3.0}, None),  # fewer than two buckets
        (0.5, {1.0: 6.0, 2.0: 5.0, math.inf: 10.0}, 1.0 * (5 / 6)),  # a drop is made monotonic
        (-0.1, {1.0: 1.0, math.inf: 1.0}, -math.inf),
        (1.1, {1.0: 1.0, math.inf: 1.0}, math.inf),
    ],
)
def test_quantile_follows_prometheus_edge_cases(q, buckets, want):
    assert quantile(q, buckets) == want


def _dcgm(used_mib: int, ecc: int, xid: int) -> str:
    lab = 'gpu="0",UUID="GPU-5ca1-0100",modelName="NVIDIA H100 80GB HBM3"'
    return "".join(
        f"{name}{{{lab}}} {value}\n"
        for name, value in (
            ("DCGM_FI_DEV_FB_USED", used_mib),
            ("DCGM_FI_DEV_FB_FREE", 81559 - used_mib),
            ("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", ecc),
            ("DCGM_FI_DEV_XID_ERRORS", xid),
        )
    )


def test_slow_health_counters_are_asked_every_30_s_the_rest_every_refresh(prometheus):
    """ECC, retired pages, remapped rows, PCIe and NVLink counters are read every 30 s, as
    NVML's are (dcgm-exporter collects every 30 s): within that, a refresh reuses them while
    memory and the XID are fresh; requests per refresh do not change."""
    server = StaticExposition(_dcgm(1000, 1, 0))
    target = prometheus.add_target(server.address, job="scale-health")
    try:
        prometheus.wait_until_scraped(target)
        src = _source(prometheus, server.address, "dcgm")
        try:
            (first,) = src.poll().gpus
            server.text = _dcgm(2000, 5, 79)
            prometheus.wait_for(f'DCGM_FI_DEV_FB_USED{{instance="{server.address}"}} == 2000')
            second = src.poll()
        finally:
            src.close()
        fresh = _source(prometheus, server.address, "dcgm")
        try:
            (now,) = fresh.poll().gpus
        finally:
            fresh.close()
    finally:
        target.remove()
        server.stop()
    assert first.memory_used_bytes == 1000 * MIB and first.health.ecc_uncorrected_volatile == 1
    (gpu,) = second.gpus
    assert gpu.memory_used_bytes == 2000 * MIB, "memory: every refresh"
    assert [e.code for e in second.events] == [79], "the XID: every refresh"
    assert gpu.health.ecc_uncorrected_volatile == 1, "ECC: the answer of 30 s ago, reused"
    assert second.queries == 2, "the same requests: the figures, the GPU's labels and up"
    assert now.health.ecc_uncorrected_volatile == 5


class _Spy(PromSource):
    """The real source; the expressions it sent are kept."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    def _split(self, expr, *args, **kwargs):
        self.sent.append(expr)
        return super()._split(expr, *args, **kwargs)

    def refresh(self):
        self.sent.clear()
        reading = self.poll()
        return reading, sum(e.count("unless on") for e in self.sent)


def _gpu_text(kind: str, gpus: dict[str, dict[str, float]]) -> str:
    label = "UUID" if kind == "dcgm" else "gpu_uuid"
    return "".join(
        f'{name}{{gpu="{i}",{label}="{uuid}"}} {value}\n'
        for i, (uuid, fields) in enumerate(gpus.items())
        for name, value in fields.items()
    )


def test_a_figure_every_gpu_has_from_dcgm_is_not_asked_of_the_second_exporter(prometheus):
    """Where DCGM covers every GPU, the join that asks vramtop's exporter for what DCGM lacks
    answers nothing: after one refresh shows it, it is left out, and a GPU DCGM stops
    reporting gets vramtop's figures in the refresh that sees it (one more request)."""
    full = {"DCGM_FI_DEV_FB_USED": 1000, "DCGM_FI_DEV_FB_FREE": 79000, "DCGM_FI_DEV_GPU_TEMP": 50}
    dcgm_gpus = {
        "GPU-dead-0000": {**full, "DCGM_FI_DEV_GPU_UTIL": 90},  # no power from either exporter
        "GPU-dead-0001": {**full, "DCGM_FI_DEV_GPU_UTIL": 10, "DCGM_FI_DEV_POWER_USAGE": 300},
    }
    own = {
        "vramtop_gpu_memory_used_bytes": 7 * GIB,
        "vramtop_gpu_memory_total_bytes": 80 * GIB,
        "vramtop_gpu_utilization_ratio": 0.25,
        "vramtop_gpu_temperature_celsius": 33,
    }
    vramtop_gpus = {
        "GPU-dead-0000": own,
        "GPU-dead-0001": {**own, "vramtop_gpu_power_watts": 150},
    }
    dcgm = StaticExposition(_gpu_text("dcgm", dcgm_gpus))
    mine = StaticExposition(_gpu_text("vramtop", vramtop_gpus))
    targets = [prometheus.add_target(s.address, job="scale-cover") for s in (dcgm, mine)]
    instance = f"{dcgm.address}|{mine.address}"
    every = load_all()
    src = _Spy(Endpoint(prometheus.url), [every["dcgm"], every["vramtop_gpus"]], True, instance)
    try:
        for t in targets:
            prometheus.wait_until_scraped(t)
        first, joins_first = src.refresh()
        second, joins_second = src.refresh()
        third, joins_third = src.refresh()  # nothing changed: still left out
        dcgm.text = _gpu_text("dcgm", {"GPU-dead-0000": dcgm_gpus["GPU-dead-0000"]})
        prometheus.wait_for(
            f'count(DCGM_FI_DEV_FB_USED{{instance="{dcgm.address}"}})',
            lambda r: bool(r) and r[0].value == 1,
        )
        gone, joins_gone = src.refresh()
        after, joins_after = src.refresh()
    finally:
        src.close()
        for t in targets:
            t.remove()
        dcgm.stop()
        mine.stop()
    assert joins_first == 4, "asked once: nothing known yet"
    assert (joins_second, joins_third) == (0, 0), "DCGM covers every GPU: not asked again"
    assert first.gpus == second.gpus == third.gpus, "and the frame is the same"
    assert second.queries == first.queries
    a, b = second.gpus
    assert (a.memory_used_bytes, a.utilization_percent, a.power_watts) == (1000 * MIB, 90, None)
    assert (b.memory_used_bytes, b.power_watts) == (1000 * MIB, 300)
    # DCGM stops reporting GPU 1: its figures come from vramtop's exporter at once
    assert joins_gone == 4 and gone.queries == second.queries + 1
    _, b = gone.gpus
    assert (b.memory_used_bytes, b.temperature_c, b.power_watts) == (7 * GIB, 33, 150)
    assert b.utilization_percent == 25.0
    # and from then on the join is asked with the rest, every refresh
    assert joins_after == 4 and after.queries == second.queries and after.gpus == gone.gpus


def test_a_gpu_exporters_figures_go_in_a_request_of_their_own(prometheus, served):
    """One series per GPU and field, a fleet's largest answer: asked alone, untagged and not
    joined with ``or`` (the tag and the join cost Prometheus per series); the other queries
    batched per profile as before; as many requests every refresh."""
    from vramtop.sources import promql

    every = load_all()
    chosen = [every["dcgm"], every["vramtop_gpus"], every["vllm"]]
    instance = "|".join(served[k] for k in ("dcgm", "vramtop", "vllm"))
    src = _Spy(Endpoint(prometheus.url), chosen, True, instance, "5s")
    try:
        first, _ = src.refresh()
        sent = list(src.sent)
        second, _ = src.refresh()
    finally:
        src.close()
    figures = [
        q.expr for g in src._groups()[0] for q in g if q.key == "gpu" and not q.every and q.alone
    ]
    assert len(figures) == 2, "DCGM's and vramtop's exporter's"
    for expr in figures:
        assert expr in sent and expr.startswith("max by (__name__, instance, GPU_I_ID, ")
        assert not any(expr in e and e != expr for e in sent), "alone, untagged"
    # each profile's other queries, and the histograms' rates: one tagged batch each
    assert sum(promql._TAG in e for e in sent) == 4 == len(sent) - len(figures)
    assert first.queries == second.queries == len(sent)
    assert {g.uuid for g in second.gpus} == {"GPU-5ca1-0000", "GPU-5ca1-0001", "GPU-5ca1-0002"}
