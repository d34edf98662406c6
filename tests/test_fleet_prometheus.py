"""A fleet through a real Prometheus: three real `vramtop --serve-metrics` exporters (fake NVML,
real model processes), two simulated vLLM servers and a DCGM exporter, each scraped under a
host's name (``instance: gpu-a:19400``). vramtop reads each replica's VRAM from the exporter
and its p95 from vLLM, GPUs merged by UUID, and a host whose exporter stopped as down."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import wait_for_exec
from fakenvml import fake_env
from promstack import Prometheus, StaticExposition, free_port, start_prometheus

from vramtop import fleet
from vramtop.collector import Collector
from vramtop.config import Settings
from vramtop.demo.exporter import GIB, GpuLoad, ModelLoad, SimulatedExporter
from vramtop.demo.scenario import Gpu, Process, Scenario
from vramtop.model import InstanceFigures
from vramtop.profiles import load_all
from vramtop.sources.host import HostSource
from vramtop.sources.http import Endpoint
from vramtop.sources.promql import PromReading, PromSource
from vramtop.sources.queries import model_queries
from vramtop.wiring import remote_sources

REL = 1e-6
HOSTS = ("gpu-a", "gpu-b", "gpu-c")


@dataclass
class Stack:
    prom: Prometheus
    exporters: dict[str, subprocess.Popen]  # host -> `vramtop --serve-metrics` child
    closed_port: int

    def poll(self, profile: str = "auto", **kw) -> PromReading:
        src = self.source(profile, **kw)
        try:
            return src.poll()
        finally:
            src.close()

    def source(self, profile: str = "auto", **kw) -> PromSource:
        profiles = load_all()
        chosen = list(profiles.values())
        if profile != "auto":
            chosen = [profiles[p] for p in profile.split(",")]
        return PromSource(
            Endpoint(self.prom.url), chosen, profile != "auto", kw.pop("instance", None), "5s", **kw
        )


def _serving(model: str) -> subprocess.Popen:
    """A real process whose command line names its model, as vLLM's does."""
    args = ("vllm", "serve", "--served-model-name", model)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(900)", *args])
    wait_for_exec(child, args)
    return child


def _exporter(fake_lib: Path, workdir: Path, scenario: Scenario) -> tuple[subprocess.Popen, str]:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "scenario.toml"
    scenario.write(path)
    base = {k: v for k, v in os.environ.items() if not k.startswith("VRAMTOP_")}
    base["XDG_CONFIG_HOME"] = str(workdir / "xdg")
    child = subprocess.Popen(
        [sys.executable, "-m", "vramtop", "--serve-metrics", "127.0.0.1:0", "--interval", "1"],
        stderr=subprocess.PIPE,
        text=True,
        env=fake_env(fake_lib, path, base),
        cwd=workdir,
    )
    assert child.stderr is not None
    line = child.stderr.readline()  # written once the port is bound
    m = re.match(r"vramtop: serving metrics on http://(127\.0\.0\.1:\d+)", line)
    assert m, line
    return child, m.group(1)


def _target(address: str, job: str, host: str, port: int, **labels: str) -> dict:
    return {"targets": [address], "labels": {"instance": f"{host}:{port}", **labels}}


@pytest.fixture(scope="module")
def stack(fake_lib: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("fleet")
    servers = {"llama": [_serving("llama") for _ in range(3)], "qwen": [_serving("qwen")]}
    a1, a2, b1 = servers["llama"]
    (c1,) = servers["qwen"]
    scenarios = {
        # gpu-a: llama on two GPUs; GPU-aaaa-0000 is also seen by DCGM
        "gpu-a": Scenario(
            gpus=(
                Gpu(uuid="GPU-aaaa-0000", memory_used=30 * GIB, utilization_gpu=80,
                    processes=(Process(a1.pid, 20 * GIB),)),
                Gpu(uuid="GPU-aaaa-0001", memory_used=12 * GIB, utilization_gpu=40,
                    processes=(Process(a2.pid, 10 * GIB),)),
            )
        ),
        "gpu-b": Scenario(
            gpus=(Gpu(uuid="GPU-bbbb-0000", memory_used=8 * GIB,
                      processes=(Process(b1.pid, 7 * GIB),)),)
        ),
        "gpu-c": Scenario(
            gpus=(Gpu(uuid="GPU-cccc-0000", memory_used=5 * GIB,
                      processes=(Process(c1.pid, 4 * GIB),)),)
        ),
    }  # fmt: skip
    exporters, addresses = {}, {}
    for host, scenario in scenarios.items():
        exporters[host], addresses[host] = _exporter(fake_lib, work / host, scenario)
    vllm = {
        "gpu-a": SimulatedExporter(
            "vllm", [ModelLoad("llama", 10.0, 0.5, 1.5, 3.0, 0.0, 4, running=7, kv_cache_usage=0.2)]
        ),
        "gpu-b": SimulatedExporter(
            "vllm", [ModelLoad("llama", 5.0, 1.0, 3.0, 6.0, 0.0, 2, running=2, kv_cache_usage=0.5)]
        ),
    }
    dcgm = SimulatedExporter(
        "dcgm",
        gpus=[
            GpuLoad(
                0, "GPU-AAAA-0000", memory_used_bytes=30 * GIB, utilization=0.75, temperature_c=71
            )
        ],
        host="a-node",
    )
    urls = {host: exp.start().split("//")[1].split("/")[0] for host, exp in vllm.items()}
    closed_port = free_port()  # nothing listens: gpu-a's node_exporter is down
    web = StaticExposition("http_requests_in_flight 3\n")  # a machine that is no GPU host
    job = "vramtop"
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [
                    _target(addresses[h], job, h, 19400, node=f"node-{h[-1]}") for h in HOSTS
                ],
            },
            {
                "job_name": "vllm",
                "static_configs": [_target(urls[h], "vllm", h, 8000) for h in ("gpu-a", "gpu-b")],
            },
            {
                "job_name": "dcgm",
                "static_configs": [
                    _target(dcgm.start().split("//")[1].split("/")[0], "dcgm", "gpu-a", 9400)
                ],
            },
            {
                "job_name": "node",
                "static_configs": [
                    _target(f"127.0.0.1:{closed_port}", "node", "gpu-a", 9100),
                    _target(f"127.0.0.1:{closed_port}", "node", "web-1", 9100),
                ],
            },
            {"job_name": "web", "static_configs": [_target(web.address, "web", "web-1", 80)]},
        ],
    }
    prom = start_prometheus(work / "prometheus", config)
    try:
        prom.wait_for('count(count_over_time(up{job="vllm"}[8s]) >= 6) == 2', timeout=60)
        prom.wait_for("count(vramtop_model_vram_bytes) == 4", timeout=60)
        yield Stack(prom, exporters, closed_port)
    finally:
        prom.stop()
        for exp in (*vllm.values(), dcgm, web):
            exp.stop()
        for child in [*exporters.values(), *(c for cs in servers.values() for c in cs)]:
            if child.poll() is None:
                child.kill()
            child.wait()


def test_each_replica_has_its_vram_from_the_exporter_and_its_p95_from_vllm(stack):
    r = stack.poll()
    assert r.profiles == ("dcgm", "vllm", "vramtop", "vramtop_gpus")
    models = {m.name: m for m in r.models}
    llama = models["llama"]
    assert llama.profile == "vllm", "serving figures name the profile; VRAM only joins them"
    a, b = llama.by_instance
    assert (a.instance, a.vram_bytes, a.queue_length) == ("gpu-a", 30 * GIB, 4)
    assert (b.instance, b.vram_bytes, b.queue_length) == ("gpu-b", 7 * GIB, 2)
    assert a.latency_p95_seconds == pytest.approx(1.5, rel=REL)
    assert b.latency_p95_seconds == pytest.approx(3.0, rel=REL), "the slow replica is gpu-b"
    assert a.requests_per_second == pytest.approx(10.0, rel=0.1)
    assert b.requests_per_second == pytest.approx(5.0, rel=0.1)
    # the model's VRAM is the fleet's sum, measured by the exporters
    assert llama.vram_bytes == 37 * GIB and llama.queue_length == 6
    assert set(llama.instances) == {"gpu-a:19400", "gpu-a:8000", "gpu-b:19400", "gpu-b:8000"}
    (c,) = models["qwen"].by_instance
    assert c == InstanceFigures("gpu-c", vram_bytes=4 * GIB)
    assert models["qwen"].profile == "vramtop"


def test_gpus_are_merged_by_uuid_and_keyed_by_host(stack):
    gpus = stack.poll().gpus
    assert [(g.host, g.index, g.uuid) for g in gpus] == [
        ("gpu-a", 0, "GPU-aaaa-0000"),
        ("gpu-a", 1, "GPU-aaaa-0001"),
        ("gpu-b", 0, "GPU-bbbb-0000"),
        ("gpu-c", 0, "GPU-cccc-0000"),
    ]
    # seen by DCGM and by vramtop's exporter: one GPU; DCGM's figures (the first profile's)
    # win, vramtop's fill what DCGM lacks
    one = gpus[0]
    assert one.temperature_c == 71 and one.memory_used_bytes == 30 * GIB
    assert one.memory_total_bytes == 80 * GIB and one.utilization_percent == pytest.approx(75)
    # only vramtop sees GPU 1: its own figures (the fake NVML reports 30 C)
    assert gpus[1].temperature_c == 30 and gpus[1].memory_total_bytes == 85899345920


def test_a_host_with_one_target_down_stays_up_and_says_which(stack):
    hosts = {h.instance: h for h in stack.poll().hosts}
    # gpu-b and gpu-c answer on every target: nothing to add to their GPUs and models; web-1
    # (a target down, one up) is a machine Prometheus scrapes, not a host of the fleet
    assert set(hosts) == {"gpu-a"}
    a = hosts["gpu-a"]
    assert a.up is True
    assert a.detail == "1 of 4 targets down: gpu-a:9100 (job node)"


def test_requests_per_refresh_do_not_grow_with_hosts(stack):
    # auto: detection, then one request per profile found, one more for each GPU exporter's
    # figures (Query.alone) and one for the histogram rates (each replica's p95, the buckets of
    # every histogram); `up` rides along in the first
    assert stack.poll().queries == 8
    every = "dcgm,vllm,vramtop,vramtop_gpus"
    three_hosts, one_host = stack.poll(every), stack.poll(every, instance="gpu-b:.*")
    assert three_hosts.queries == one_host.queries == 7
    assert len(three_hosts.gpus) == 4 and len(one_host.gpus) == 1
    without_vramtop = stack.poll("dcgm,vllm")
    assert without_vramtop.queries == 4 and stack.poll("vllm").queries == 2
    assert {m.name for m in one_host.models} == {"llama"}
    assert [f.instance for f in one_host.models[0].by_instance] == ["gpu-b"]


def test_figures_not_shown_per_replica_are_summed_or_maxed_in_prometheus(stack):
    """One series per model rather than per replica, with what the replicas' would have given."""
    (llama,) = [m for m in stack.poll("vllm").models if m.name == "llama"]
    assert llama.extras["running_requests"] == 9, "summed over gpu-a's 7 and gpu-b's 2"
    assert llama.extras["kv_cache_usage_ratio"] == 0.5, "the fuller cache of the two (0.2, 0.5)"
    assert [f.queue_length for f in llama.by_instance] == [4, 2], "per replica, as before"
    queries = {q.key: q.expr for q in model_queries(load_all()["vllm"], "s", "5s")}
    assert queries["extras.running_requests"] == (
        "sum by (model_name) (sum by (model_name, instance) (vllm:num_requests_running{s}))"
    )
    assert queries["queue"] == "sum by (model_name, instance) (vllm:num_requests_waiting{s})"


def test_host_label_names_the_hosts(stack):
    r = stack.poll(host_label="node")
    llama = next(m for m in r.models if m.name == "llama")
    # the exporters carry node=node-a...; vLLM's targets do not, so they keep their host key
    assert [f.instance for f in llama.by_instance] == ["gpu-a", "gpu-b", "node-a", "node-b"]
    assert [g.host for g in r.gpus if g.uuid != "GPU-aaaa-0000"] == ["node-a", "node-b", "node-c"]


def test_match_scopes_every_query(stack):
    r = stack.poll(match=(("node", "=~", "node-[ab]"),))
    assert {g.host for g in r.gpus} == {"gpu-a", "gpu-b"}
    assert {m.name for m in r.models} == {"llama"}
    assert r.profiles == ("vramtop", "vramtop_gpus"), "only series with the label are seen"


def test_backfill_charts_vllm_figures_with_the_exporters_vram_and_honours_match(stack):
    def history(**kw) -> dict:
        src = stack.source(**kw)
        try:
            src.poll()
            return src.backfill("llama", 20.0)
        finally:
            src.close()

    fleet_wide = history()
    assert fleet_wide["vram_bytes"][-1][1] == 37 * GIB and len(fleet_wide["vram_bytes"]) >= 5
    assert fleet_wide["queue_length"][-1][1] == 6 and "latency_p95_seconds" in fleet_wide
    node_b = history(match=(("node", "=", "node-b"),))
    assert node_b["vram_bytes"][-1][1] == 7 * GIB and set(node_b) == {"vram_bytes"}


def test_a_stopped_exporter_is_a_host_down_with_when_it_was_last_seen(stack):
    # up long enough for a 10 s step of the look-back to have seen it
    stack.prom.wait_for('count_over_time(up{instance="gpu-c:19400"}[15s]) >= 14', timeout=30)
    watching = stack.source()
    try:
        seen = time.time()
        before = watching.poll()
        assert {g.host for g in before.gpus} >= {"gpu-c"}
        child = stack.exporters["gpu-c"]
        child.terminate()
        child.wait(timeout=10)
        stopped = time.time()
        stack.prom.wait_for('up{instance="gpu-c:19400"} == 0', timeout=30)
        # a source that saw it up remembers when; a new one asks Prometheus once
        kept = {h.instance: h for h in watching.poll().hosts}["gpu-c"]
    finally:
        watching.close()
    fresh = stack.source()
    try:
        first = fresh.poll()
        second = fresh.poll()
    finally:
        fresh.close()
    down = {h.instance: h for h in first.hosts}["gpu-c"]
    assert (down.up, down.detail) == (False, "every target down: gpu-c:19400 (job vramtop)")
    assert down.hostname == "gpu-c"
    assert kept.up is False and seen <= kept.last_seen <= stopped
    assert stopped - 15 <= down.last_seen <= stopped, "to 10 s, from its own up series"
    # detection, 4 profiles in 7 requests, and the look-back asked once; then the 7 alone
    assert first.queries == 9 and second.queries == 7, "asked once, not every refresh"
    assert {h.instance: h for h in second.hosts}["gpu-c"].last_seen == down.last_seen
    assert "gpu-c" not in {g.host for g in first.gpus}
    # the whole path: settings -> wiring -> collector -> the Hosts rows
    settings = Settings(prometheus_url=stack.prom.url, rate_window="5s")
    collector = Collector(HostSource(), None, remote=remote_sources(settings, {}, None))
    rows = {r.instance: r for r in fleet.host_rows(collector.collect())}
    assert not rows["gpu-c"].up and rows["gpu-c"].last_seen == down.last_seen
    assert rows["gpu-a"].up and rows["gpu-a"].gpu_count == 2 and rows["gpu-a"].models == ("llama",)
    assert rows["gpu-b"].worst_p95.value == pytest.approx(3.0, rel=REL)
    assert fleet.host_rows(collector.collect())[0].instance == "gpu-c", "down hosts first"
