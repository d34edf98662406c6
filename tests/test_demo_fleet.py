"""The demo fleet (``--demo fleet``): simulated hosts whose real vramtop exporters and servers,
on loopback, are read through the real scrape path; ``--demo`` alone stays the one host."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from vramtop.config import Settings
from vramtop.demo.fleet import HOSTS
from vramtop.demo.fleet_servers import DemoFleet
from vramtop.fleet import host_rows
from vramtop.wiring import build_collector

T0 = 1_795_000_200.0
SCHEMA = json.loads(
    (Path(__file__).parent.parent / "vramtop/schemas/vramtop-1.schema.json").read_text()
)


def scrape(url: str) -> dict[str, list]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        body = answer.read().decode()
    found: dict[str, list] = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            found.setdefault(s.name, []).append(s)
    return found


@pytest.fixture
def now() -> list[float]:
    return [T0]


@pytest.fixture
def fleet(now):
    f = DemoFleet(lambda: now[0])
    yield f
    f.stop()


def exporters(fleet: DemoFleet) -> dict[str, str]:
    """Each host's first target: its vramtop exporter."""
    out: dict[str, str] = {}
    for host, url in fleet.targets():
        out.setdefault(host, url)
    return out


def test_each_host_serves_its_own_vramtop_series(fleet):
    urls = exporters(fleet)
    assert set(urls) == {h.name for h in HOSTS} and len(urls) >= 5
    uuids: set[str] = set()
    for host in HOSTS:
        if host.down:
            continue
        got = scrape(urls[host.name])
        assert {s.labels["source"]: s.value for s in got["vramtop_source_up"]} == {
            "host": 1.0,
            "nvml": 1.0,
        }
        totals = got["vramtop_gpu_memory_total_bytes"]
        assert len(totals) == host.gpu_count, host.name
        assert {s.labels["name"] for s in totals} == {host.gpu}
        assert {s.value for s in totals} == {host.gpu_gib * 2**30}
        uuids |= {s.labels["gpu_uuid"] for s in totals}
        vram = got["vramtop_model_vram_bytes"]
        for rep in host.replicas:
            on = {int(s.labels["gpu"]): s.value for s in vram if s.labels["model"] == rep.model}
            assert set(on) == set(rep.gpus), (host.name, rep.model)
            assert all(v == pytest.approx(rep.gib * 2**30, rel=0.01) for v in on.values())
        assert {s.labels["model"] for s in got["vramtop_model_processes"]} == {
            r.model for r in host.replicas
        }
        assert "vramtop_process_vram_bytes" not in got  # per-pid series stay opt-in
    assert len(uuids) == sum(h.gpu_count for h in HOSTS if not h.down), "UUIDs unique in the fleet"


def test_one_gpu_is_out_of_vram_and_the_down_host_refuses(fleet):
    urls = exporters(fleet)
    got = scrape(urls["gpu-b1"])
    used = {s.labels["gpu"]: s.value for s in got["vramtop_gpu_memory_used_bytes"]}
    total = {s.labels["gpu"]: s.value for s in got["vramtop_gpu_memory_total_bytes"]}
    assert used["1"] / total["1"] > 0.98
    assert all(used[g] / total[g] < 0.9 for g in used if g != "1")
    with pytest.raises(urllib.error.URLError) as refused:
        scrape(urls["gpu-b3"])
    assert isinstance(refused.value.reason, ConnectionRefusedError)


def test_exporters_follow_the_clock(fleet, now):
    url = exporters(fleet)["gpu-a1"]

    def util() -> dict[str, float]:
        got = scrape(url)["vramtop_gpu_utilization_ratio"]
        return {s.labels["gpu"]: s.value for s in got}

    before = util()
    now[0] = T0 + 7.0
    fleet.advance()
    after = util()
    assert before.keys() == after.keys() and before["0"] != after["0"]
    assert after["7"] == 0.0, "an idle GPU stays idle"


@pytest.fixture(scope="module")
def fleet_frame():
    return build_collector(Settings(), {}, demo="fleet", clock=lambda: T0).collect()


def test_the_collector_reads_the_fleet_through_the_scrape_source(fleet_frame):
    frame = fleet_frame
    assert frame.demo and frame.host.hostname == "demo-gpu-host"
    hosts = {h.instance: h for h in frame.hosts}
    assert set(hosts) == {h.name for h in HOSTS}, "this machine is described by its host source"
    assert [k for k, h in hosts.items() if not h.up] == ["gpu-b3"]
    assert "connection refused" in hosts["gpu-b3"].detail and hosts["gpu-b3"].last_seen is None
    assert all(h.last_seen for h in hosts.values() if h.up)
    scrape_status = frame.source("scrape")
    assert scrape_status.state == "ok", "one host down costs its own target only"
    assert scrape_status.detail.startswith("1 of ")
    per_host: dict[str | None, int] = {}
    for g in frame.gpus:
        per_host[g.host] = per_host.get(g.host, 0) + 1
    assert per_host == {None: 4} | {h.name: h.gpu_count for h in HOSTS if not h.down}
    firing = {(a.name, a.labels["instance"]) for a in frame.alerts if a.state == "firing"}
    assert {("SlowAPIResponse", "gpu-a2:8000"), ("VRAMExhausted", "gpu-b1:19400")} <= firing


def test_a_model_has_replicas_on_several_hosts_and_one_is_slow(fleet_frame):
    models = {m.name: m for m in fleet_frame.models}
    llama = {f.instance: f for f in models["llama-3.1-70b"].by_instance}
    assert set(llama) == {"demo-gpu-host", "gpu-a1", "gpu-a2"}
    assert llama["gpu-a2"].latency_p95_seconds == pytest.approx(4.6, rel=0.05)
    assert llama["gpu-a1"].latency_p95_seconds == pytest.approx(1.3, rel=0.05)
    assert llama["gpu-a2"].queue_length == 64
    assert llama["gpu-a1"].vram_bytes == pytest.approx(4 * 71.0 * 2**30, rel=0.01)
    assert {f.instance for f in models["llama-3.1-8b"].by_instance} == {"gpu-a2", "gpu-b1"}
    rows = {r.instance: r for r in host_rows(fleet_frame)}
    assert host_rows(fleet_frame)[0].instance == "gpu-b3", "the down host first"
    assert rows["gpu-a2"].alerts_firing == 2 and rows["gpu-a2"].worst_p95.model == "llama-3.1-70b"
    assert rows["gpu-b1"].gpu_count == 4 and rows["demo-gpu-host"].local
    assert rows["demo-gpu-host"].reading.cpu_count == 64


def test_demo_fleet_once_json(run_vramtop):
    out = run_vramtop("--demo", "fleet", "--once", "--format", "json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert doc["demo"] is True and doc["host"]["name"] == "demo-gpu-host"
    hosts = {h["instance"]: h for h in doc["hosts"]}
    assert set(hosts) == {"demo-gpu-host"} | {h.name for h in HOSTS}
    assert hosts["gpu-b3"]["up"] is False and "connection refused" in hosts["gpu-b3"]["detail"]
    assert hosts["gpu-a1"]["up"] is True and hosts["gpu-a1"]["gpu_count"] == 8
    assert hosts["gpu-b2"]["models"] == ["adaface_ir101", "bge-large-en-v1.5", "yolov10n"]
    assert hosts["gpu-a2"]["alerts_firing"] == 2
    llama = next(m for m in doc["models"] if m["name"] == "llama-3.1-70b")
    slow = max(llama["by_instance"], key=lambda f: f["latency_p95_seconds"])
    assert len(llama["by_instance"]) == 3 and slow["instance"] == "gpu-a2"


def test_demo_alone_is_the_one_host_as_before(run_vramtop):
    for args in (("--demo", "--json"), ("--demo", "host", "--json")):
        out = run_vramtop(*args).stdout
        doc = json.loads(out)
        assert doc["host"]["name"] == "demo-gpu-host" and len(doc["gpus"]) == 4
        assert doc["hosts"] == []
        assert "llama-3.1-8b" not in {m["name"] for m in doc["models"]}
        assert not any(h.name in out for h in HOSTS), "no fleet host, nor its alerts"
    text = run_vramtop("--demo", "--once")
    assert text.returncode == 0 and "DEMO (simulated host)" in text.stdout.splitlines()[0]


def test_demo_bogus_is_one_sentence_and_exit_2(run_vramtop):
    out = run_vramtop("--demo", "bogus", "--once")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("vramtop: ")
    assert "'bogus'" in out.stderr and "fleet" in out.stderr
