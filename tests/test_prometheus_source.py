"""vramtop's Prometheus, alerts and scrape sources against the real servers, scraping simulated
exporters whose values are known: what vramtop shows must be what the servers report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import jsonschema
import pytest
from promstack import REPO, Prometheus

from vramtop.demo.exporter import GIB, GpuLoad, GpuProcess, ModelLoad, SimulatedExporter
from vramtop.demo.scenario import Scenario
from vramtop.profiles import load_all
from vramtop.sources.alerts import AlertSource
from vramtop.sources.http import Endpoint
from vramtop.sources.promql import PromReading, PromSource
from vramtop.sources.scrape import ScrapeSource

HOSTILE = 'we"ird\\name.v1'
SCHEMA = json.loads((REPO / "vramtop/schemas/vramtop-1.schema.json").read_text())
REL = 1e-6


def fs_models() -> list[ModelLoad]:
    return [
        ModelLoad(HOSTILE, 20.0, 0.05, 0.2, 0.4, 0.02, 7, vram_bytes=3 * GIB),
        ModelLoad("yolov10n", 5.0, 0.01, 0.03, 0.09, 0.0, 60, vram_bytes=GIB),
    ]


LLM = {"ttft_p95": 0.3, "kv_cache_usage": 0.42, "preemptions_per_second": 0.5}


@dataclass
class Fleet:
    prom: Prometheus
    exporters: dict[str, SimulatedExporter]
    instances: dict[str, str]

    def source(self, name: str, profile: str = "auto", **kw) -> PromSource:
        profiles = load_all()
        chosen = (
            list(profiles.values())
            if profile == "auto"
            else [profiles[p] for p in profile.split(",")]
        )
        return PromSource(
            Endpoint(self.prom.url),
            chosen,
            profile != "auto",
            kw.pop("instance", self.instances.get(name)),
            "5s",
            **kw,
        )

    def poll(self, name: str, profile: str = "auto", **kw) -> PromReading:
        src = self.source(name, profile, **kw)
        try:
            return src.poll()
        finally:
            src.close()


@pytest.fixture(scope="module")
def fleet(prometheus: Prometheus) -> Iterator[Fleet]:
    exporters = {
        "facesocial": SimulatedExporter("facesocial", fs_models()),
        "vllm": SimulatedExporter(
            "vllm",
            [
                ModelLoad("llama-3.1-8b", 10.0, 0.5, 1.5, 3.0, 0.05, 4, **LLM),
                ModelLoad("meta-llama/Llama-3.1-70B", 2.0, 2.0, 6.0, 9.0, 0.0, 12, **LLM),
            ],
        ),
        "vllm_legacy": SimulatedExporter(
            "vllm", [ModelLoad("old-vllm", 4.0, 0.2, 0.6, 0.9, 0.0, 1, **LLM)], legacy=True
        ),
        "triton": SimulatedExporter(
            "triton",
            [ModelLoad("resnet50", 50.0, 0.004, 0.01, 0.02, 0.1, 3)],
            triton_summaries=True,
        ),
        "tgi": SimulatedExporter("tgi", [ModelLoad("bloom", 3.0, 0.3, 0.9, 1.2, 0.0, 2)]),
        "sglang": SimulatedExporter(
            "sglang", [ModelLoad("qwen", 8.0, 0.1, 0.4, 0.8, 0.25, 5, tp_size=2, **LLM)]
        ),
        "dcgm": SimulatedExporter(
            "dcgm",
            gpus=[
                GpuLoad(
                    0,
                    "GPU-AAAA-0000",
                    memory_used_bytes=70 * GIB,
                    memory_reserved_bytes=GIB,
                    utilization=0.9,
                    temperature_c=70,
                    power_watts=500,
                ),
                GpuLoad(1, "GPU-AAAA-0001", memory_used_bytes=GIB),
            ],
            host="dcgm-host",
        ),
        "smi": SimulatedExporter(
            "nvidia_gpu_exporter",
            gpus=[
                GpuLoad(
                    0,
                    "GPU-BBBB-0000",
                    memory_used_bytes=10 * GIB,
                    utilization=0.5,
                    processes=(GpuProcess(4242, "python3", 9 * GIB),),
                )
            ],
        ),
        "fleet": SimulatedExporter(
            "vllm",
            [
                ModelLoad("shared", 6.0, 0.1, 0.3, 0.5, 0.0, 2, instance="host-a:8000", **LLM),
                ModelLoad("shared", 4.0, 0.1, 0.3, 0.5, 0.0, 3, instance="host-b:8000", **LLM),
                ModelLoad("solo", 1.0, 0.1, 0.3, 0.5, 0.0, 0, instance="host-c:8000", **LLM),
            ],
        ),
    }
    targets = {}
    for name, exp in exporters.items():
        url = exp.start()
        targets[name] = prometheus.add_target(url, job=f"vt-{name}", honor_labels=name == "fleet")
    for t in targets.values():
        prometheus.wait_until_scraped(t, history_s=6)
    instances = {name: t.address for name, t in targets.items()}
    instances["fleet"] = "host-.*"
    yield Fleet(prometheus, exporters, instances)
    for t in targets.values():
        t.remove()
    for exp in exporters.values():
        exp.stop()


def by_name(reading: PromReading) -> dict:
    return {m.name: m for m in reading.models}


def test_facesocial_latency_rates_queue_vram_and_a_hostile_name(fleet):
    r = fleet.poll("facesocial")
    assert r.profiles == ("facesocial",)
    m = by_name(r)[HOSTILE]
    assert m.latency_p50_seconds == pytest.approx(0.05, rel=REL)
    assert m.latency_p95_seconds == pytest.approx(0.2, rel=REL)
    assert m.latency_p99_seconds == pytest.approx(0.4, rel=REL)
    assert m.requests_per_second == pytest.approx(20.0, rel=0.1)
    assert m.error_ratio == pytest.approx(0.02, rel=0.05)
    assert (m.queue_length, m.vram_bytes, m.profile) == (7, 3 * GIB, "facesocial")
    assert m.instances == (fleet.instances["facesocial"],)
    assert by_name(r)["yolov10n"].queue_length == 60


def test_vllm_extras_and_model_names_with_slashes(fleet):
    models = by_name(fleet.poll("vllm"))
    big = models["meta-llama/Llama-3.1-70B"]
    assert big.latency_p95_seconds == pytest.approx(6.0, rel=REL) and big.queue_length == 12
    small = models["llama-3.1-8b"]
    assert small.error_ratio == pytest.approx(0.05, rel=0.05)
    assert small.extras["ttft_p95_seconds"] == pytest.approx(0.3, rel=REL)
    assert small.extras["kv_cache_usage_ratio"] == pytest.approx(0.42)
    assert small.extras["preemptions_per_second"] == pytest.approx(0.5, rel=0.1)


def test_renamed_metrics_fall_back(fleet):
    old = by_name(fleet.poll("vllm_legacy"))["old-vllm"]
    assert old.extras["kv_cache_usage_ratio"] == pytest.approx(0.42)
    assert old.latency_p95_seconds == pytest.approx(0.6, rel=REL)


def test_triton_counters_without_total_microseconds_and_summaries(fleet):
    m = by_name(fleet.poll("triton"))["resnet50"]
    assert m.profile == "triton" and m.queue_length == 3
    assert m.requests_per_second == pytest.approx(50.0, rel=0.1)
    assert m.error_ratio == pytest.approx(0.1, rel=0.05)
    assert m.latency_p95_seconds == pytest.approx(0.01, rel=0.01)
    assert m.extras["latency_mean_seconds"] == pytest.approx(
        fleet.exporters["triton"].models[0].latency.mean, rel=0.05
    )


def test_tgi_has_no_model_label_so_the_job_names_it(fleet):
    (m,) = fleet.poll("tgi").models
    assert m.name == "vt-tgi" and m.latency_p95_seconds == pytest.approx(0.9, rel=REL)
    assert m.queue_length == 2 and m.requests_per_second == pytest.approx(3.0, rel=0.1)


def test_sglang_gauges_take_the_max_over_ranks(fleet):
    m = by_name(fleet.poll("sglang"))["qwen"]
    assert m.queue_length == 5, "two tensor-parallel ranks must not double the queue"
    assert m.error_ratio == pytest.approx(0.25, rel=0.05)
    assert m.latency_p99_seconds == pytest.approx(0.8, rel=REL)


def test_auto_detection_picks_only_profiles_with_data(fleet):
    assert fleet.poll("vllm").profiles == ("vllm",)
    assert fleet.poll("dcgm").profiles == ("dcgm",)
    forced = fleet.poll("vllm", profile="vllm,dcgm")
    assert forced.profiles == ("vllm", "dcgm") and len(forced.models) == 2


def test_fleet_instances_and_instance_filter(fleet):
    models = by_name(fleet.poll("fleet"))
    shared = models["shared"]
    assert shared.instances == ("host-a:8000", "host-b:8000")
    assert shared.queue_length == 5 and shared.requests_per_second == pytest.approx(10, rel=0.1)
    only_b = by_name(fleet.poll("fleet", instance="host-b.*"))
    assert set(only_b) == {"shared"} and only_b["shared"].queue_length == 3


def test_queries_per_refresh_do_not_grow_with_models_or_hosts(fleet):
    one = fleet.poll("facesocial", profile="facesocial")
    many = fleet.poll("fleet", profile="facesocial")
    # one request for the profile, one for its histogram rates (each replica's p95, the
    # latency buckets its quantiles are computed from), whatever the size
    assert one.queries == many.queries == 2, "two requests, whatever the size"


def test_gpus_through_dcgm_and_nvidia_gpu_exporter(fleet):
    dcgm = fleet.poll("dcgm").gpus
    # a GPU's host is the fleet key (the instance without its port) unless --host-label names
    # another label, such as DCGM's Hostname
    assert [(g.host, g.index, g.uuid) for g in dcgm] == [
        ("127.0.0.1", 0, "GPU-aaaa-0000"),
        ("127.0.0.1", 1, "GPU-aaaa-0001"),
    ]
    named = fleet.poll("dcgm", host_label="Hostname").gpus
    assert [g.host for g in named] == ["dcgm-host", "dcgm-host"]
    g = dcgm[0]
    assert g.memory_used_bytes == 70 * GIB and g.memory_reserved_bytes == GIB
    assert g.memory_total_bytes == 80 * GIB and g.utilization_percent == pytest.approx(90)
    assert (g.temperature_c, g.power_watts) == (70, 500)
    (smi,) = fleet.poll("smi").gpus
    assert smi.uuid == "GPU-bbbb-0000" and smi.memory_used_bytes == 10 * GIB
    assert smi.memory_total_bytes == 80 * GIB and smi.utilization_percent == pytest.approx(50)
    (p,) = smi.processes
    assert (p.pid, p.name, p.used_memory_bytes) == (4242, "python3", 9 * GIB)


def test_host_through_node_exporter(fleet, node_exporter):
    prom = fleet.prom
    prom.wait_for('count_over_time(up{job="node"}[6s]) >= 6')
    r = fleet.poll("node", profile="node_exporter", instance=node_exporter.target.address)
    (h,) = r.hosts
    assert (h.hostname, h.instance, h.up) == (node_exporter.target.address, "127.0.0.1", True)
    assert 0 <= h.cpu_percent <= 100
    assert h.cpu_count >= 1 and h.memory_total_bytes > h.memory_used_bytes > 0
    assert len(h.load_average) == 3 and h.disk_total_bytes > 0


def test_backfill_of_one_model_with_a_hostile_name(fleet):
    src = fleet.source("facesocial")
    try:
        src.poll()
        series = src.backfill(HOSTILE, 20.0)
    finally:
        src.close()
    assert series["latency_p95_seconds"][-1][1] == pytest.approx(0.2, rel=REL)
    assert series["queue_length"][-1][1] == 7 and len(series["queue_length"]) >= 5
    assert 0 < series["error_ratio"][-1][1] < 0.05


def test_rejected_query_is_reported_and_the_rest_still_works(fleet, tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "broken.toml").write_text(
        'name = "broken"\nkind = "model"\ndetect = ["model_queue_length"]\n'
        '[queue]\ngauge = ["model_queue_length"]\n'
        '[extras.bad]\ngauge = ["model_queue_length"]\nmatch = { model = "(" }\n'
    )
    profiles = load_all([tmp_path / "profiles"])
    src = PromSource(
        Endpoint(fleet.prom.url), [profiles["broken"]], True, fleet.instances["facesocial"], "5s"
    )
    try:
        r = src.poll()
    finally:
        src.close()
    # the profile's two queries and the fleet's `up`, in one request
    assert r.note.startswith("1 of 3 queries failed: Prometheus at ")
    assert "rejected a query" in r.note
    assert by_name(r)["yolov10n"].queue_length == 60


def test_cli_once_against_real_prometheus(fleet, run_vramtop):
    out = run_vramtop(
        "--json",
        "--prometheus",
        fleet.prom.url,
        "--rate-window",
        "5s",
        "--instance",
        fleet.instances["vllm"],
        scenario=Scenario(),
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    jsonschema.validate(doc, SCHEMA)
    models = {m["name"]: m for m in doc["models"]}
    assert models["meta-llama/Llama-3.1-70B"]["latency_p95_seconds"] == pytest.approx(6.0, rel=REL)
    assert models["llama-3.1-8b"]["profile"] == "vllm"
    status = {s["name"]: s for s in doc["sources"]}
    assert status["prometheus"]["status"] == "ok" and status["alerts"]["status"] == "ok"
    text = run_vramtop(
        "--once",
        "--prometheus",
        fleet.prom.url,
        "--rate-window",
        "5s",
        "--instance",
        fleet.instances["vllm"],
        scenario=Scenario(),
    ).stdout
    assert "meta-llama/Llama-3.1-70B" in text and "6.00 s" in text


def test_scrape_without_prometheus(fleet):
    exp = fleet.exporters["vllm"]
    src = ScrapeSource([Endpoint(exp.url)], list(load_all().values()), first_gap=1.0)
    try:
        first = by_name(src.poll())
        second = by_name(src.poll())
    finally:
        src.close()
    for models in (first, second):
        m = models["llama-3.1-8b"]
        assert m.profile == "vllm" and m.queue_length == 4
        assert m.requests_per_second == pytest.approx(10.0, rel=0.25)
        assert m.latency_p95_seconds == pytest.approx(1.5, rel=0.1)
        assert m.extras["kv_cache_usage_ratio"] == pytest.approx(0.42)
    # Its host: the address without the port, as Prometheus's instance would be keyed.
    assert first["llama-3.1-8b"].instances == ("127.0.0.1",)


def test_scrape_of_a_broken_server(run_vramtop):
    from badserver import BadServer

    bad = BadServer()
    bad.mode = "html"
    try:
        out = run_vramtop("--json", "--scrape", bad.url + "/metrics", scenario=Scenario())
    finally:
        bad.close()
    assert out.returncode == 0
    status = {s["name"]: s for s in json.loads(out.stdout)["sources"]}["scrape"]
    assert status["status"] == "error" and "HTML page" in status["detail"]


def test_alerts_firing_pending_and_silenced(fleet, alertmanager):
    prom = fleet.prom
    prom.wait_for('ALERTS{alertname="TestQueueBacklog",alertstate="firing"}', timeout=40)
    src = AlertSource(Endpoint(prom.url), Endpoint(alertmanager.url))
    try:
        alertmanager.wait_for_alert({"alertname": "TestQueueBacklog"}, lambda a: True, timeout=40)
        alerts = src.poll().alerts
        backlog = [a for a in alerts if a.name == "TestQueueBacklog"]
        assert backlog and all(a.state == "firing" for a in backlog)
        assert {a.source for a in backlog} == {"prometheus+alertmanager"}
        states = [a.state for a in alerts]
        assert states == sorted(states, key=lambda s: s != "firing"), "firing first"
        assert any(a.state == "pending" for a in alerts)
        silence = alertmanager.silence({"alertname": "TestQueueBacklog"})
        try:
            alertmanager.wait_for_alert(
                {"alertname": "TestQueueBacklog"},
                lambda a: a["status"]["state"] == "suppressed",
                timeout=20,
            )
            backlog = [a for a in src.poll().alerts if a.name == "TestQueueBacklog"]
            assert backlog and all(a.silenced for a in backlog)
        finally:
            alertmanager.expire_silence(silence)
    finally:
        src.close()
