"""The simulated exporters through real Prometheus, Alertmanager and node_exporter, and the
shipped alert rules through promtool."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from prometheus_client.parser import text_string_to_metric_families
from promstack import (
    LIVE_RULES,
    REPO,
    SHIPPED_RULES,
    Alertmanager,
    Prometheus,
    Target,
    promql_string,
    require_binary,
)

from vramtop.demo.exporter import (
    GIB,
    MIB,
    GpuLoad,
    GpuProcess,
    Latency,
    ModelLoad,
    SimulatedExporter,
)

WINDOW_S = 5  # rate() window; the fleet waits until Prometheus holds this much history
HOSTILE = ('we"ird\\name.v1', "two\nlines")


def _models(*names: str, **extra: object) -> list[ModelLoad]:
    shapes = [(20.0, 0.05, 0.2, 0.4, 0.02, 7), (5.0, 0.8, 2.0, 3.5, 0.1, 3)]
    return [ModelLoad(name, *shape, **extra) for name, shape in zip(names, shapes, strict=False)]


_LLM = {"ttft_p95": 0.3, "itl_p95": 0.04, "queue_time_p95": 0.5, "kv_cache_usage": 0.42}


def e2e(m: ModelLoad) -> Latency:
    return m.latency


def ttft(m: ModelLoad) -> Latency:
    return Latency.from_p95(m.ttft_p95)


def itl(m: ModelLoad) -> Latency:
    return Latency.from_p95(m.itl_p95)


def queue(m: ModelLoad) -> Latency:
    return Latency.from_p95(m.queue_time_p95)


@dataclass(frozen=True)
class Case:
    """One server profile and the PromQL that reads it back (SEL: this case's job matcher)."""

    id: str
    profile: str
    models: list[ModelLoad]
    label: str | None  # the model label; None: TGI, one model per instance
    requests: str
    errors: str
    queue: str
    histograms: dict[str, Callable[[ModelLoad], Latency]] = field(default_factory=dict)
    options: dict = field(default_factory=dict)

    @property
    def job(self) -> str:
        return f"sim-{self.id}"

    def promql(self, template: str) -> str:
        return template.replace("SEL", f"job={promql_string(self.job)}")

    def key(self, model: ModelLoad) -> str | None:
        return model.name if self.label else None


_VLLM_REQUESTS = "sum by (model_name) (rate(vllm:request_success_total{SEL}[5s]))"
_VLLM_ERRORS = (
    'sum by (model_name) (rate(vllm:request_success_total{SEL,finished_reason=~"abort|error"}[5s]))'
)
_TGI = {
    "label": None,
    "requests": "sum(rate(tgi_request_countSFX{SEL}[5s]))",
    "errors": "sum(rate(tgi_request_failureSFX{SEL}[5s]))",
    "queue": "tgi_queue_size{SEL}",
    "histograms": {"tgi_request_duration": e2e, "tgi_request_queue_duration": queue},
}
CASES = [
    Case(
        "facesocial",
        "facesocial",
        _models(*HOSTILE),
        "model",
        "sum by (model) (rate(model_inference_duration_seconds_count{SEL}[5s]))",
        "sum by (model) (rate(model_errors_total{SEL}[5s]))",
        "model_queue_length{SEL}",
        {"model_inference_duration_seconds": e2e},
    ),
    Case(
        "vllm",
        "vllm",
        _models("llama-3.1-8b", "meta-llama/Llama-3.1-70B", **_LLM),
        "model_name",
        _VLLM_REQUESTS,
        _VLLM_ERRORS,
        "vllm:num_requests_waiting{SEL}",
        {
            "vllm:e2e_request_latency_seconds": e2e,
            "vllm:time_to_first_token_seconds": ttft,
            "vllm:inter_token_latency_seconds": itl,
            "vllm:request_queue_time_seconds": queue,
        },
    ),
    Case(
        "vllm-legacy",
        "vllm",
        _models("mistral-7b", **_LLM),
        "model_name",
        _VLLM_REQUESTS,
        _VLLM_ERRORS,
        "vllm:num_requests_waiting{SEL}",
        {"vllm:e2e_request_latency_seconds": e2e, "vllm:time_per_output_token_seconds": itl},
        {"legacy": True},
    ),
    Case(
        "triton",
        "triton",
        _models("resnet50_onnx", "bert-base", queue_time_p95=0.01),
        "model",
        "sum by (model) (rate(nv_inference_request_success{SEL}[5s]))"
        " + sum by (model) (rate(nv_inference_request_failure{SEL}[5s]))",
        "sum by (model) (rate(nv_inference_request_failure{SEL}[5s]))",
        "nv_inference_pending_request_count{SEL}",
        options={"triton_summaries": True},
    ),
    Case("tgi", "tgi", _models("bigscience/bloom", queue_time_p95=0.2), **_TGI),
    Case(
        "tgi-total",
        "tgi",
        _models("bigscience/bloom"),
        **{**_TGI, "histograms": {"tgi_request_duration": e2e}},
        options={"counter_suffix": "_total"},
    ),
    Case(
        "sglang",
        "sglang",
        _models("qwen2.5-72b", "deepseek-v3", tp_size=2, **_LLM),
        "model_name",
        "sum by (model_name) (rate(sglang:num_requests_total{SEL}[5s]))",
        "sum by (model_name) (rate(sglang:num_aborted_requests_total{SEL}[5s]))",
        "max by (model_name) (sglang:num_queue_reqs{SEL})",
        {
            "sglang:e2e_request_latency_seconds": e2e,
            "sglang:time_to_first_token_seconds": ttft,
            "sglang:queue_time_seconds": queue,
        },
    ),
]
BY_ID = {c.id: c for c in CASES}
HISTOGRAMS = [(c, name) for c in CASES for name in c.histograms]

# The GPU exporters, a fleet behind one exporter, and a backend that trips the alert rules.
GPUS = [
    GpuLoad(0, memory_used_bytes=78_000 * MIB, memory_reserved_bytes=500 * MIB, utilization=0.87),
    GpuLoad(
        1,
        uuid="GPU-ABCDEF01-2345-6789-ABCD-EF0123456789",
        memory_used_bytes=20 * GIB,
        processes=(GpuProcess(4242, "python3", 19 * GIB),),
    ),
]
FLEET = [
    ModelLoad("llama-3.1-70b", 10, 0.5, 1.0, 2.0, 0.0, 12, instance="gpu-a:8000"),
    ModelLoad("llama-3.1-70b", 10, 0.5, 1.0, 2.0, 0.0, 30, instance="gpu-b:8000"),
]
HOG = ModelLoad("queue-hog", 10, 0.5, 1.5, 2.5, 0.05, 75)


@dataclass
class Fleet:
    exporters: dict[str, SimulatedExporter]
    targets: dict[str, Target]


@pytest.fixture(scope="module")
def fleet(prometheus: Prometheus, node_exporter) -> Iterator[Fleet]:
    """Every exporter of this module, scraped together so that one wait covers them all."""
    exporters = {c.id: SimulatedExporter(c.profile, c.models, **c.options) for c in CASES}
    exporters["dcgm"] = SimulatedExporter("dcgm", gpus=GPUS, host="gpu-node-1")
    exporters["dcgm-hostname"] = SimulatedExporter("dcgm", gpus=GPUS, hostname_label="hostname")
    exporters["nvidia"] = SimulatedExporter("nvidia_gpu_exporter", gpus=GPUS)
    exporters["fleet"] = SimulatedExporter("vllm", FLEET)
    exporters["alerting"] = SimulatedExporter(
        "facesocial", [HOG], [GpuLoad(0, memory_used_bytes=78 * GIB)]
    )
    exporters["mutable"] = SimulatedExporter(
        "facesocial", [ModelLoad("mutable", 10, 0.1, 0.2, 0.3)]
    )
    targets: dict[str, Target] = {}
    try:
        for name, exporter in exporters.items():
            url = exporter.start()
            targets[name] = prometheus.add_target(
                url, job=BY_ID[name].job if name in BY_ID else name
            )
        targets["fleet-honored"] = prometheus.add_target(
            exporters["fleet"].url, job="fleet-honored", honor_labels=True
        )
        for target in targets.values():
            prometheus.wait_until_scraped(target, history_s=WINDOW_S)
        prometheus.wait_until_scraped(node_exporter.target)
        yield Fleet(exporters, targets)
    finally:
        for target in targets.values():
            target.remove()
        for exporter in exporters.values():
            exporter.stop()


# -- promtool ------------------------------------------------------------------------------


def _promtool(*args: str) -> subprocess.CompletedProcess:
    promtool = require_binary("promtool", "prometheus")
    return subprocess.run(
        [promtool, *args], capture_output=True, text=True, timeout=60, cwd=REPO, check=False
    )


def test_shipped_and_live_rules_pass_promtool_check() -> None:
    result = _promtool("check", "rules", str(SHIPPED_RULES), str(LIVE_RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_shipped_rules_pass_their_unit_tests() -> None:
    result = _promtool("test", "rules", "tests/rules/facesocial.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


# -- the exporter without a server ---------------------------------------------------------


def _parse(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_exposition_escapes_label_values() -> None:
    exporter = SimulatedExporter("facesocial", _models(*HOSTILE))
    samples = _parse(exporter.render(exporter.started_at + 10))
    names = {dict(labels)["model"] for name, labels in samples if name == "model_queue_length"}
    assert names == set(HOSTILE)


def test_changes_keep_counters_growing_and_buckets_cumulative() -> None:
    now = [1000.0]
    exporter = SimulatedExporter("vllm", _models("m"), clock=lambda: now[0])
    before = _parse(exporter.render(1010.0))
    now[0] = 1010.0
    exporter.update_model("m", requests_per_second=3.0, latency_p95=0.35, queue_length=80)
    after = _parse(exporter.render(1011.0))

    assert after[("vllm:num_requests_waiting", (("engine", "0"), ("model_name", "m")))] == 80
    for key, value in before.items():
        gone = key[0].endswith("_bucket") and key not in after  # the old p95 bucket
        if key[0].endswith(("_total", "_bucket", "_sum", "_count")) and not gone:
            assert after[key] >= value, key
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for (name, labels), value in after.items()
        if name == "vllm:e2e_request_latency_seconds_bucket"
    )
    assert 0.35 in [le for le, _ in buckets]
    counts = [value for _, value in buckets]
    assert counts == sorted(counts)


# -- the stack -----------------------------------------------------------------------------


def test_stack_loads_rules_and_finds_alertmanager(
    prometheus: Prometheus, alertmanager: Alertmanager, fleet: Fleet
) -> None:
    # (fleet: Prometheus discovers the Alertmanager while the fleet's targets are awaited)
    assert prometheus.wait_for_alertmanagers() == [f"{alertmanager.url}/api/v2/alerts"]
    rules = {r["name"] for g in prometheus.rules() for r in g["rules"]}
    assert rules == {
        "SystemDown",
        "HighErrorRate",
        "VRAMExhausted",
        "HighCPUUsage",
        "SlowAPIResponse",
        "ModelQueueBacklog",
        "TestQueueBacklog",
        "TestQueueBacklogPending",
    }


def test_node_exporter_cpu_time_is_queryable(prometheus: Prometheus, fleet: Fleet) -> None:
    modes = {s.labels["mode"] for s in prometheus.query('node_cpu_seconds_total{job="node"}')}
    assert {"idle", "user", "system"} <= modes
    busy = prometheus.wait_for(
        '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{job="node",mode="idle"}[5m])))'
    )
    assert 0 <= busy[0].value <= 100


@pytest.mark.parametrize("q", [0.5, 0.95, 0.99])
@pytest.mark.parametrize(
    ("case", "histogram"), HISTOGRAMS, ids=[f"{c.id}-{h}" for c, h in HISTOGRAMS]
)
def test_histogram_quantiles_come_back_exactly(
    prometheus: Prometheus, fleet: Fleet, case: Case, histogram: str, q: float
) -> None:
    by = f"le, {case.label}" if case.label else "le"
    result = prometheus.query(
        case.promql(f"histogram_quantile({q}, sum by ({by}) (rate({histogram}_bucket{{SEL}}[5s])))")
    )
    got = {s.labels.get(case.label or "", None): s.value for s in result}
    want = {case.key(m): case.histograms[histogram](m).quantile(q) for m in case.models}
    assert got == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rates_error_ratios_and_queues_come_back(
    prometheus: Prometheus, fleet: Fleet, case: Case
) -> None:
    sfx = case.options.get("counter_suffix", "")

    def by_model(template: str) -> dict[str | None, float]:
        result = prometheus.query(case.promql(template.replace("SFX", sfx)))
        return {s.labels.get(case.label or "", None): s.value for s in result}

    requests, queues = by_model(case.requests), by_model(case.queue)
    # One query for the ratio: two would be evaluated at two instants, a scrape apart at times.
    ratios = by_model(f"({case.errors}) / ({case.requests})")
    for m in case.models:
        key = case.key(m)
        assert requests[key] == pytest.approx(m.requests_per_second, rel=0.1)
        assert ratios[key] == pytest.approx(m.error_ratio, rel=1e-6)
        assert queues[key] == m.queue_length


def test_triton_mean_latency_and_summaries(prometheus: Prometheus, fleet: Fleet) -> None:
    case = BY_ID["triton"]
    mean = prometheus.query(
        case.promql(
            "sum by (model) (rate(nv_inference_request_duration_us{SEL}[5s]))"
            " / sum by (model) (rate(nv_inference_request_success{SEL}[5s])) / 1e6"
        )
    )
    p95 = prometheus.query(case.promql('nv_inference_request_summary_us{SEL,quantile="0.95"}'))
    models = {m.name: m for m in case.models}
    assert {s.labels["model"]: s.value for s in mean} == pytest.approx(
        {name: m.latency.mean for name, m in models.items()}, rel=1e-9
    )
    assert {s.labels["model"]: s.value for s in p95} == pytest.approx(
        {name: m.latency_p95 * 1e6 for name, m in models.items()}, rel=1e-9
    )
    assert {s.labels["version"] for s in p95} == {"1"}


@pytest.mark.parametrize("case", [c for c in CASES if c.id != "triton"], ids=lambda c: c.id)
def test_histogram_sum_over_count_is_the_mean(
    prometheus: Prometheus, fleet: Fleet, case: Case
) -> None:
    histogram, dist = next(iter(case.histograms.items()))
    by = case.label or "job"
    result = prometheus.query(
        case.promql(
            f"sum by ({by}) (rate({histogram}_sum{{SEL}}[5s]))"
            f" / sum by ({by}) (rate({histogram}_count{{SEL}}[5s]))"
        )
    )
    got = {s.labels.get(case.label or "", None): s.value for s in result}
    assert got == pytest.approx({case.key(m): dist(m).mean for m in case.models}, rel=1e-9)


def test_vllm_legacy_names_replace_the_new_ones(prometheus: Prometheus, fleet: Fleet) -> None:
    def names(case_id: str) -> set[str]:
        query = BY_ID[case_id].promql('count by (__name__) ({__name__=~"vllm:.*",SEL})')
        return {s.labels["__name__"] for s in prometheus.query(query)}

    new, old = names("vllm"), names("vllm-legacy")
    assert {"vllm:kv_cache_usage_perc", "vllm:inter_token_latency_seconds_bucket"} <= new
    assert not {"vllm:gpu_cache_usage_perc", "vllm:time_per_output_token_seconds_bucket"} & new
    assert {"vllm:gpu_cache_usage_perc", "vllm:time_per_output_token_seconds_bucket"} <= old
    assert not {"vllm:kv_cache_usage_perc", "vllm:inter_token_latency_seconds_bucket"} & old
    kv = prometheus.value(BY_ID["vllm-legacy"].promql("vllm:gpu_cache_usage_perc{SEL}"))
    assert kv == 0.42


def test_sglang_reports_one_gauge_series_per_tp_rank(prometheus: Prometheus, fleet: Fleet) -> None:
    result = prometheus.query(BY_ID["sglang"].promql("sglang:num_queue_reqs{SEL}"))
    ranks = {(s.labels["model_name"], s.labels["tp_rank"]) for s in result}
    assert ranks == {(m, r) for m in ("qwen2.5-72b", "deepseek-v3") for r in ("0", "1")}


def test_hostile_model_names_round_trip(prometheus: Prometheus, fleet: Fleet) -> None:
    case = BY_ID["facesocial"]
    for model in case.models:
        matcher = f"job={promql_string(case.job)},model={promql_string(model.name)}"
        assert prometheus.value(f"model_queue_length{{{matcher}}}") == model.queue_length
        handler = promql_string(f"/api/v1/{model.name}")
        assert prometheus.query(f'http_requests_total{{job="{case.job}",handler={handler}}}')


def test_dcgm_reports_framebuffer_in_mib(prometheus: Prometheus, fleet: Fleet) -> None:
    used = {s.labels["gpu"]: s for s in prometheus.query('DCGM_FI_DEV_FB_USED{job="dcgm"}')}
    assert used["0"].value == 78_000
    assert used["0"].labels["Hostname"] == "gpu-node-1"
    assert used["0"].labels["modelName"] == "NVIDIA H100 80GB HBM3"
    assert used["1"].labels["UUID"] == GPUS[1].gpu_uuid
    free = prometheus.value('DCGM_FI_DEV_FB_FREE{job="dcgm",gpu="0"}')
    assert free == 80 * 1024 - 78_000 - 500
    renamed = prometheus.query('DCGM_FI_DEV_FB_USED{job="dcgm-hostname"}')
    assert {s.labels.get("hostname") for s in renamed} == {"sim-gpu-host"}
    assert not any("Hostname" in s.labels for s in renamed)


def test_nvidia_gpu_exporter_uses_bare_lowercase_uuids(
    prometheus: Prometheus, fleet: Fleet
) -> None:
    used = {
        s.labels["uuid"]: s.value
        for s in prometheus.query('nvidia_smi_memory_used_bytes{job="nvidia"}')
    }
    uuid = "abcdef01-2345-6789-abcd-ef0123456789"
    assert used[uuid] == 20 * GIB
    app = prometheus.query('nvidia_smi_compute_app_used_memory_bytes{job="nvidia"}')
    assert [(s.labels["uuid"], s.labels["pid"], s.value) for s in app] == [(uuid, "4242", 19 * GIB)]
    assert prometheus.value(f'nvidia_smi_gpu_info{{job="nvidia",uuid="{uuid}"}}') == 1
    assert prometheus.value(f'nvidia_smi_index{{job="nvidia",uuid="{uuid}"}}') == 1


def test_honor_labels_turns_one_exporter_into_a_fleet(prometheus: Prometheus, fleet: Fleet) -> None:
    honored = prometheus.query('vllm:num_requests_waiting{job="fleet-honored"}')
    assert {s.labels["instance"]: s.value for s in honored} == {"gpu-a:8000": 12, "gpu-b:8000": 30}
    plain = prometheus.query('vllm:num_requests_waiting{job="fleet"}')
    assert {s.labels["instance"] for s in plain} == {fleet.exporters["fleet"].address}
    assert {s.labels["exported_instance"] for s in plain} == {"gpu-a:8000", "gpu-b:8000"}


def test_runtime_changes_reach_prometheus_without_counter_resets(
    prometheus: Prometheus, fleet: Fleet
) -> None:
    fleet.exporters["mutable"].update_model(
        "mutable", queue_length=42, requests_per_second=40, latency_p95=0.25
    )
    prometheus.wait_for('model_queue_length{job="mutable"} == 42', timeout=10)
    resets = prometheus.value(
        'sum(resets(model_inference_duration_seconds_bucket{job="mutable"}[1m]))'
        ' + sum(resets(model_inference_duration_seconds_count{job="mutable"}[1m]))'
    )
    assert resets == 0


# -- alerts --------------------------------------------------------------------------------


def test_live_alert_fires_and_reaches_alertmanager(
    prometheus: Prometheus, alertmanager: Alertmanager, fleet: Fleet
) -> None:
    prometheus.wait_for(
        'ALERTS{alertname="TestQueueBacklog",alertstate="firing",model="queue-hog"}', timeout=15
    )
    alert = alertmanager.wait_for_alert(
        {"alertname": "TestQueueBacklog", "model": "queue-hog"},
        lambda a: a["status"]["state"] == "active",
    )
    assert alert["labels"]["severity"] == "warning"
    assert alert["labels"]["job"] == "alerting"
    assert alert["annotations"]["summary"] == "Model queue-hog has 75 requests queued"

    pending = [
        a for a in prometheus.alerts() if a["labels"]["alertname"] == "TestQueueBacklogPending"
    ]
    assert {(a["labels"]["model"], a["state"]) for a in pending} == {("queue-hog", "pending")}
    assert not [
        a for a in alertmanager.alerts() if a["labels"]["alertname"] == "TestQueueBacklogPending"
    ]


def test_silence_suppresses_the_alert_in_alertmanager(
    alertmanager: Alertmanager, fleet: Fleet
) -> None:
    labels = {"alertname": "TestQueueBacklog", "model": "queue-hog"}
    alertmanager.wait_for_alert(labels)
    silence = alertmanager.silence(labels)
    try:
        alert = alertmanager.wait_for_alert(
            labels, lambda a: a["status"]["state"] == "suppressed", timeout=10
        )
        assert alert["status"]["silencedBy"] == [silence]
    finally:
        alertmanager.expire_silence(silence)


def test_shipped_rules_go_pending_on_live_metrics(prometheus: Prometheus, fleet: Fleet) -> None:
    def states() -> dict[str, str]:
        return {
            a["labels"]["alertname"]: a["state"]
            for a in prometheus.alerts()
            if a["labels"].get("job") == "alerting"
        }

    prometheus.wait_for('count(ALERTS{job="alerting",alertname!~"Test.*"}) >= 4', timeout=15)
    got = states()
    assert got["ModelQueueBacklog"] == "pending"
    assert got["HighErrorRate"] == "pending"
    assert got["SlowAPIResponse"] == "pending"
    assert got["VRAMExhausted"] in {"pending", "firing"}  # its `for` is only 30 s
