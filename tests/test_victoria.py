"""The global view: two Prometheus servers (external_labels cluster=eu and cluster=us)
remote-write into a real VictoriaMetrics, and vramtop queries VictoriaMetrics as it would
Thanos or Mimir: hosts of both clusters, a replica's p95 in each, a host down in one, and
``--match cluster=eu`` scoping all of it.

The exporters are light stand-ins: a static vramtop exposition per host (gauges need no
movement) and simulated vLLM servers; the real `vramtop --serve-metrics` is scraped in
test_fleet_prometheus.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from promstack import (
    Prometheus,
    StaticExposition,
    free_port,
    start_prometheus,
    start_victoria_metrics,
)

from vramtop.demo.exporter import GIB, ModelLoad, SimulatedExporter
from vramtop.demo.scenario import Scenario
from vramtop.profiles import load_all
from vramtop.sources.http import Endpoint
from vramtop.sources.promql import PromReading, PromSource


def vramtop_exposition(uuid: str, used: int, model: str | None = None) -> str:
    gpu = f'gpu="0",gpu_uuid="{uuid}",name="NVIDIA H100 80GB HBM3"'
    lines = [
        f"vramtop_gpu_memory_used_bytes{{{gpu}}} {used}",
        f"vramtop_gpu_memory_total_bytes{{{gpu}}} {80 * GIB}",
        'vramtop_build_info{version="test"} 1',
    ]
    if model:
        lines.append(
            f'vramtop_model_vram_bytes{{model="{model}",gpu="0",gpu_uuid="{uuid}"}} {used}'
        )
    return "\n".join(lines) + "\n"


@dataclass
class Global:
    vm: Prometheus

    def poll(self, **kw) -> PromReading:
        src = PromSource(Endpoint(self.vm.url), list(load_all().values()), False, None, "5s", **kw)
        try:
            return src.poll()
        finally:
            src.close()


def _target(address: str, host: str, port: int) -> dict:
    return {"targets": [address], "labels": {"instance": f"{host}:{port}"}}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Global]:
    work = tmp_path_factory.mktemp("global")
    vm = start_victoria_metrics(work / "vm")
    static = {
        "eu-gpu-1": StaticExposition(vramtop_exposition("GPU-eu01-0000", 30 * GIB, "llama")),
        "eu-gpu-2": StaticExposition(vramtop_exposition("GPU-eu02-0000", 2 * GIB)),
        "us-gpu-1": StaticExposition(vramtop_exposition("GPU-us01-0000", 20 * GIB, "llama")),
    }
    vllm = {
        "eu-gpu-1": SimulatedExporter("vllm", [ModelLoad("llama", 10.0, 0.5, 1.5, 3.0, 0.0, 4)]),
        "us-gpu-1": SimulatedExporter("vllm", [ModelLoad("llama", 5.0, 1.0, 3.0, 6.0, 0.0, 2)]),
    }
    vllm_at = {host: exp.start().split("//")[1].split("/")[0] for host, exp in vllm.items()}
    proms = []
    try:
        for cluster in ("eu", "us"):
            hosts = [h for h in static if h.startswith(cluster)]
            exporters = [_target(static[h].address, h, 19400) for h in hosts]
            if cluster == "us":  # a host whose exporter never answers
                exporters.append(_target(f"127.0.0.1:{free_port()}", "us-gpu-9", 19400))
            config = {
                "global": {
                    "scrape_interval": "1s",
                    "scrape_timeout": "1s",
                    "external_labels": {"cluster": cluster},
                },
                "remote_write": [
                    {
                        "url": f"{vm.url}/api/v1/write",
                        "queue_config": {"batch_send_deadline": "1s"},
                    }
                ],
                "scrape_configs": [
                    {"job_name": "vramtop", "static_configs": exporters},
                    {
                        "job_name": "vllm",
                        "static_configs": [
                            _target(vllm_at[h], h, 8000) for h in vllm if h.startswith(cluster)
                        ],
                    },
                ],
            }
            proms.append(start_prometheus(work / cluster, config, name=f"prometheus-{cluster}"))
        # both clusters' samples in VictoriaMetrics, with enough history for rate(...[5s])
        vm.wait_for('count(count_over_time(up{job="vllm"}[8s]) >= 6) == 2', timeout=90)
        vm.wait_for("count(vramtop_model_vram_bytes) == 2", timeout=30)
        yield Global(vm)
    finally:
        for prom in proms:
            prom.stop()
        vm.stop()
        for exp in vllm.values():
            exp.stop()
        for s in static.values():
            s.stop()


def test_the_global_view_sees_hosts_of_both_clusters(world):
    r = world.poll()
    assert r.profiles == ("vllm", "vramtop", "vramtop_gpus")
    assert [(g.host, g.uuid) for g in r.gpus] == [
        ("eu-gpu-1", "GPU-eu01-0000"),
        ("eu-gpu-2", "GPU-eu02-0000"),
        ("us-gpu-1", "GPU-us01-0000"),
    ]
    (llama,) = r.models
    eu, us = llama.by_instance
    assert (eu.instance, eu.vram_bytes, eu.queue_length) == ("eu-gpu-1", 30 * GIB, 4)
    assert (us.instance, us.vram_bytes, us.queue_length) == ("us-gpu-1", 20 * GIB, 2)
    assert eu.latency_p95_seconds == pytest.approx(1.5, rel=0.01)
    assert us.latency_p95_seconds == pytest.approx(3.0, rel=0.01)
    assert llama.vram_bytes == 50 * GIB
    (down,) = r.hosts
    assert (down.instance, down.up) == ("us-gpu-9", False)
    assert down.detail == "every target down: us-gpu-9:19400 (job vramtop)"
    assert down.last_seen is None
    assert down.unavailable["last_seen"] == "not up at any time in the last hour"


def test_match_scopes_the_global_view_to_one_cluster(world):
    r = world.poll(match=(("cluster", "=", "eu"),))
    assert {g.host for g in r.gpus} == {"eu-gpu-1", "eu-gpu-2"}
    (llama,) = r.models
    assert [f.instance for f in llama.by_instance] == ["eu-gpu-1"]
    assert llama.vram_bytes == 30 * GIB and llama.queue_length == 4
    assert r.hosts == (), "us-gpu-9 is another cluster's"
    us = world.poll(match=(("cluster", "!~", "e.*"),))
    assert {g.host for g in us.gpus} == {"us-gpu-1"}
    assert [h.instance for h in us.hosts] == ["us-gpu-9"]


def test_cli_match_against_victoria_metrics(world, run_vramtop):
    def frame(*flags: str) -> dict:
        out = run_vramtop(
            "--json",
            "--prometheus",
            world.vm.url,
            "--rate-window",
            "5s",
            *flags,
            scenario=Scenario(),
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    doc = frame("--match", "cluster=~eu")
    assert sorted(g["host"] for g in doc["gpus"]) == ["eu-gpu-1", "eu-gpu-2"]
    assert {s["name"]: s["status"] for s in doc["sources"]}["prometheus"] == "ok"
    doc = frame("--match", "cluster=us", "--match", "job=vramtop")
    assert [g["host"] for g in doc["gpus"]] == ["us-gpu-1"]
    # the Hosts rows, worst first: the down host, then the GPU host
    assert [(h["instance"], h["up"]) for h in doc["hosts"]] == [
        ("us-gpu-9", False),
        ("us-gpu-1", True),
    ]
    assert [m["name"] for m in doc["models"]] == ["llama"]


def test_victoria_metrics_is_a_real_server(world):
    # the clusters' labels came from the Prometheus servers' external_labels, by remote write
    clusters = world.vm.query("count by (cluster) (up)")
    assert sorted(s.labels["cluster"] for s in clusters) == ["eu", "us"]


def test_doctor_checks_the_matched_part_of_the_fleet(world, run_vramtop):
    def doctor(cluster: str):
        flags = ("--prometheus", world.vm.url, "--profile", "vramtop", "--match", cluster)
        return run_vramtop("doctor", *flags, scenario=Scenario())

    eu = doctor("cluster=eu")
    assert eu.returncode == 0, eu.stdout + eu.stderr
    assert "profile vramtop" in eu.stdout and "all 1 figures found" in eu.stdout
    mars = doctor("cluster=mars")
    assert mars.returncode == 1
    assert "none of its metrics (vramtop_model_vram_bytes) is on" in mars.stdout
