"""A fleet without Prometheus: `--scrape` and `--hosts-file` over real vramtop exporters (child
processes on the fake NVML) bound to 127.0.0.19, .2 and .3, which Linux loopback treats as three
hosts, beside servers that hang, answer HTML or refuse connections."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from badserver import BadServer, closed_port
from fakenvml import fake_env

from vramtop import config
from vramtop.collector import merge_models
from vramtop.config import ConfigError
from vramtop.demo.scenario import Gpu, Process, Scenario
from vramtop.fleet import host_rows
from vramtop.model import InstanceFigures, ModelReading
from vramtop.profiles import load_all
from vramtop.sources.base import SourceError
from vramtop.sources.http import Endpoint
from vramtop.sources.scrape import ScrapeSource
from vramtop.sources.targets import TargetError, parse_hosts
from vramtop.wiring import build_collector, scrape_targets

GIB = 2**30
MIB = 2**20
HOSTS = ("127.0.0.19", "127.0.0.2", "127.0.0.3")
HANG, HTML, REFUSED = "127.0.0.4", "127.0.0.5", "127.0.0.6"


# -- the fleet: three real exporters and three broken hosts -----------------------------------


def _start(fake_lib: Path, tmp_path: Path, host: str, scenario: Scenario) -> subprocess.Popen:
    path = tmp_path / f"scenario-{host}.toml"
    scenario.write(path)
    base = {k: v for k, v in os.environ.items() if not k.startswith("VRAMTOP_")}
    base["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    return subprocess.Popen(
        [sys.executable, "-m", "vramtop", "--serve-metrics", f"{host}:0", "--interval", "0.5"],
        stderr=subprocess.PIPE,
        text=True,
        env=fake_env(fake_lib, path, base),
        cwd=tmp_path,
    )


def _url(child: subprocess.Popen) -> str:
    assert child.stderr is not None
    line = child.stderr.readline()  # written once the port is bound
    assert re.match(r"vramtop: serving metrics on http://127\.0\.0\.\d+:", line), line
    return line.split(" on ", 1)[1].split(",", 1)[0]


def _wait_first_frame(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(url, timeout=10) as answer:
            if b"vramtop_model_vram_bytes" in answer.read():
                return
        assert time.monotonic() < deadline, f"{url} never served a frame"
        time.sleep(0.1)


@pytest.fixture
def fleet(fake_lib: Path, tmp_path: Path, spawn):
    """host -> /metrics URL: llama on .1 (20 GiB) and .2 (30 GiB), qwen on .2, .3 idle but
    for one small process; and servers that hang, answer HTML and refuse."""
    a = spawn("vllm", "serve", "--served-model-name", "llama")
    b = spawn("vllm", "serve", "--served-model-name", "llama")
    c = spawn("--model", "qwen")
    d = spawn("--model", "tiny")
    scenarios = {
        "127.0.0.19": Scenario(
            gpus=(
                Gpu(
                    uuid="GPU-aaaa-0001",
                    memory_used=24 * GIB,
                    processes=(Process(a.pid, 20 * GIB),),
                ),
            )
        ),
        "127.0.0.2": Scenario(
            gpus=(
                Gpu(
                    uuid="GPU-bbbb-0001",
                    memory_used=32 * GIB,
                    processes=(Process(b.pid, 30 * GIB),),
                ),
                Gpu(
                    uuid="GPU-bbbb-0002", memory_used=9 * GIB, processes=(Process(c.pid, 8 * GIB),)
                ),
            )
        ),
        "127.0.0.3": Scenario(
            gpus=(Gpu(uuid="GPU-cccc-0001", memory_used=2 * GIB, processes=(Process(d.pid, GIB),)),)
        ),
    }
    children = {h: _start(fake_lib, tmp_path, h, s) for h, s in scenarios.items()}
    hang, html = BadServer(HANG), BadServer(HTML)
    hang.mode, html.mode = "hang", "html"
    try:
        urls = {h: _url(child) for h, child in children.items()}
        for url in urls.values():
            _wait_first_frame(url)
        urls[HANG] = hang.url + "/metrics"
        urls[HTML] = html.url + "/metrics"
        urls[REFUSED] = f"http://{REFUSED}:{closed_port(REFUSED)}/metrics"
        yield urls
    finally:
        hang.close()
        html.close()
        for child in children.values():
            child.kill()
            child.wait()
            assert child.stderr is not None
            child.stderr.close()


def test_one_shot_over_the_fleet_returns_with_every_host(fleet, run_vramtop, tmp_path):
    hosts_file = tmp_path / "hosts.txt"
    # Three by host:port in the file (one of them also given as --scrape: read once).
    lines = [fleet[h].removeprefix("http://").removesuffix("/metrics") for h in HOSTS]
    hosts_file.write_text("# the fleet\n\n" + "\n".join(lines) + "\n")
    args = ["--once", "--format", "json", "--timeout", "1", "--hosts-file", str(hosts_file)]
    for h in (HOSTS[0], HANG, HTML, REFUSED):
        args += ["--scrape", fleet[h]]
    started = time.monotonic()
    out = run_vramtop(*args, scenario=Scenario())
    took = time.monotonic() - started
    assert out.returncode == 0, out.stderr
    # The hanging server holds a request for 30 s: the run did not wait for it.
    assert took < 20, took
    doc = json.loads(out.stdout)
    scrape = {s["name"]: s for s in doc["sources"]}["scrape"]
    assert scrape["status"] == "ok" and scrape["detail"].startswith("3 of 6 targets down: ")
    assert {h["name"] for h in doc["hosts"]} == {*HOSTS, HANG, HTML, REFUSED}
    per_host = {}
    for g in doc["gpus"]:
        per_host.setdefault(g["host"], []).append(g["uuid"])
    assert per_host == {
        "127.0.0.19": ["GPU-aaaa-0001"],
        "127.0.0.2": ["GPU-bbbb-0001", "GPU-bbbb-0002"],
        "127.0.0.3": ["GPU-cccc-0001"],
    }
    models = {m["name"]: m for m in doc["models"]}
    assert models["llama"]["vram_bytes"] == 50 * GIB
    assert models["qwen"]["vram_bytes"] == 8 * GIB


def test_the_frame_holds_hosts_up_and_down_gpus_and_replicas(fleet, scenario):
    scenario(Scenario())  # this machine: no GPUs
    settings = config.load(
        env={}, config_file=os.devnull, flags={"scrape": tuple(fleet.values()), "timeout": 1.0}
    )
    before = time.time()
    collector = build_collector(settings, {})
    frame = collector.collect()
    after = time.time()
    hosts = {h.instance: h for h in frame.hosts}
    assert set(hosts) == {*HOSTS, HANG, HTML, REFUSED}
    for h in HOSTS:
        assert hosts[h].up and hosts[h].detail == "", hosts[h]
        assert before <= hosts[h].last_seen <= after
    assert not hosts[HANG].up and hosts[HANG].last_seen is None
    assert hosts[HANG].detail.endswith("did not answer within 1 s")
    assert "answered with an HTML page (HTTP 502)" in hosts[HTML].detail
    assert "unreachable (connection refused)" in hosts[REFUSED].detail
    assert frame.source("scrape").state == "ok"
    assert frame.source("scrape").detail.startswith("3 of 6 targets down: ")

    gpus = {(g.host, g.uuid): g for g in frame.gpus}
    assert set(gpus) == {
        ("127.0.0.19", "GPU-aaaa-0001"),
        ("127.0.0.2", "GPU-bbbb-0001"),
        ("127.0.0.2", "GPU-bbbb-0002"),
        ("127.0.0.3", "GPU-cccc-0001"),
    }
    assert gpus[("127.0.0.2", "GPU-bbbb-0002")].memory_used_bytes == 9 * GIB
    assert gpus[("127.0.0.2", "GPU-bbbb-0002")].index == 1

    models = {m.name: m for m in frame.models}
    llama = models["llama"]  # two hosts, one reading: VRAM summed, a share per host
    assert llama.vram_bytes == 50 * GIB and llama.profile == "vramtop"
    assert llama.instances == ("127.0.0.19", "127.0.0.2")
    assert llama.by_instance == (
        InstanceFigures("127.0.0.19", vram_bytes=20 * GIB),
        InstanceFigures("127.0.0.2", vram_bytes=30 * GIB),
    )
    assert models["qwen"].by_instance == (InstanceFigures("127.0.0.2", vram_bytes=8 * GIB),)

    rows = {r.instance: r for r in host_rows(frame)}
    assert [r.instance for r in host_rows(frame)][:3] == [HANG, HTML, REFUSED]  # down first
    assert rows["127.0.0.2"].gpu_count == 2 and rows["127.0.0.2"].models == ("llama", "qwen")


# -- a host that goes down and comes back; the others keep updating -------------------------


def _vllm(queue: int, running: int = 1) -> str:
    return (
        f'vllm:num_requests_waiting{{model_name="m"}} {queue}\n'
        f'vllm:num_requests_running{{model_name="m"}} {running}\n'
    )


def test_a_host_that_recovers_is_up_again_and_the_others_never_stop():
    steady = BadServer("127.0.0.7")
    steady.mode, steady.text = "metrics", _vllm(1)
    port = closed_port("127.0.0.8")
    eps = [
        Endpoint(steady.url + "/metrics", timeout=2),
        Endpoint(f"http://127.0.0.8:{port}/metrics", timeout=2),
    ]
    src = ScrapeSource(eps, list(load_all().values()), first_gap=0.05)
    back = None
    try:
        first = src.poll()
        hosts = {h.instance: h for h in first.hosts}
        assert hosts["127.0.0.7"].up and not hosts["127.0.0.8"].up
        assert "unreachable (connection refused)" in hosts["127.0.0.8"].detail
        assert first.note.startswith("1 of 2 targets down: metrics at http://127.0.0.8:")
        assert [(f.instance, f.queue_length) for f in first.models[0].by_instance] == [
            ("127.0.0.7", 1)
        ]

        back = BadServer("127.0.0.8", port)
        back.mode, back.text = "metrics", _vllm(10)
        steady.text = _vllm(2)
        second = src.poll()
        hosts = {h.instance: h for h in second.hosts}
        assert hosts["127.0.0.8"].up and hosts["127.0.0.8"].detail == ""
        seen = hosts["127.0.0.8"].last_seen
        assert seen is not None and second.note == ""
        (m,) = second.models  # one model on two hosts: queues add up
        assert m.queue_length == 12 and m.instances == ("127.0.0.7", "127.0.0.8")
        assert [(f.instance, f.queue_length) for f in m.by_instance] == [
            ("127.0.0.7", 2),
            ("127.0.0.8", 10),
        ]

        back.close()
        back = None
        steady.text = _vllm(3)
        third = src.poll()
        hosts = {h.instance: h for h in third.hosts}
        assert not hosts["127.0.0.8"].up and hosts["127.0.0.8"].last_seen == seen
        assert [(f.instance, f.queue_length) for f in third.models[0].by_instance] == [
            ("127.0.0.7", 3)
        ]
    finally:
        src.close()
        steady.close()
        if back is not None:
            back.close()


def test_every_target_down():
    eps = [Endpoint(f"http://127.0.0.9:{closed_port('127.0.0.9')}/metrics", timeout=1)]
    one = ScrapeSource(eps, list(load_all().values()), first_gap=0.05)
    with pytest.raises(SourceError, match="unreachable"):  # one target: as before, an error
        one.poll()
    one.close()
    eps.append(Endpoint(f"http://127.0.0.10:{closed_port('127.0.0.10')}/metrics", timeout=1))
    two = ScrapeSource(eps, list(load_all().values()), first_gap=0.05)
    reading = two.poll()
    two.close()
    assert reading.note.startswith("2 of 2 targets down: ")
    assert [(h.instance, h.up) for h in reading.hosts] == [
        ("127.0.0.10", False),
        ("127.0.0.9", False),
    ]
    assert reading.models == () and reading.gpus == ()


DCGM = """\
DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-dddd-0001",modelName="NVIDIA A100",Hostname="node-x"} 1024
DCGM_FI_DEV_FB_FREE{gpu="0",UUID="GPU-dddd-0001",modelName="NVIDIA A100",Hostname="node-x"} 3072
DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-dddd-0001",modelName="NVIDIA A100",Hostname="node-x"} 55
"""


def test_named_hosts_and_a_gpu_exporter_read_as_prometheus_would():
    a, b = BadServer(), BadServer()
    a.mode, b.mode = "metrics", "metrics"
    a.text = DCGM + _vllm(4)
    b.text = _vllm(6)
    eps = [Endpoint(a.url + "/metrics"), Endpoint(b.url + "/metrics")]
    src = ScrapeSource(eps, list(load_all().values()), first_gap=0.05, hosts=["sim-a", "sim-b"])
    try:
        reading = src.poll()
    finally:
        src.close()
        a.close()
        b.close()
    assert [h.instance for h in reading.hosts] == ["sim-a", "sim-b"]
    (gpu,) = reading.gpus
    assert gpu.host == "sim-a" and gpu.uuid == "GPU-dddd-0001" and gpu.name == "NVIDIA A100"
    assert gpu.memory_used_bytes == 1024 * MIB and gpu.memory_total_bytes == 4096 * MIB
    assert gpu.utilization_percent == 55
    (m,) = reading.models
    assert [(f.instance, f.queue_length) for f in m.by_instance] == [("sim-a", 4), ("sim-b", 6)]
    with pytest.raises(ValueError, match="one host per endpoint"):
        ScrapeSource(eps, [], hosts=["only-one"])


def test_two_sources_of_one_model_merge_their_shares():
    prom = ModelReading(
        "llama",
        None,
        latency_p95_seconds=0.4,
        instances=("a", "b"),
        by_instance=(InstanceFigures("b", latency_p95_seconds=0.4), InstanceFigures("a")),
    )
    scrape = ModelReading(
        "llama",
        30 * GIB,
        instances=("a", "c"),
        by_instance=(
            InstanceFigures("a", vram_bytes=10 * GIB, latency_p95_seconds=0.1),
            InstanceFigures("c", vram_bytes=20 * GIB),
        ),
    )
    (m,) = merge_models((), [prom, scrape])
    assert m.vram_bytes == 30 * GIB and m.instances == ("a", "b", "c")
    assert m.by_instance == (
        InstanceFigures("a", vram_bytes=10 * GIB, latency_p95_seconds=0.1),
        InstanceFigures("b", latency_p95_seconds=0.4),
        InstanceFigures("c", vram_bytes=20 * GIB),
    )


# -- the hosts file ---------------------------------------------------------------------------


def test_hosts_file_lines():
    text = (
        "# GPU fleet\n"
        "\n"
        "gpu-a:19400\n"
        "  gpu-b:19400   # the spare\n"
        "[::1]:19400\n"
        "10.0.0.5:8000\n"
        "https://gpu-c.example/vramtop/metrics\n"
        "gpu-a:19400\n"
    )
    assert parse_hosts(text, "hosts.txt") == [
        "http://gpu-a:19400/metrics",
        "http://gpu-b:19400/metrics",
        "http://[::1]:19400/metrics",
        "http://10.0.0.5:8000/metrics",
        "https://gpu-c.example/vramtop/metrics",
        "http://gpu-a:19400/metrics",  # duplicates go later, with the --scrape URLs
    ]


@pytest.mark.parametrize(
    "line",
    ["gpu-b:port", "gpu-b", "ftp://gpu-b/metrics", "http://", "gpu-b:99999", "gpu b:80", ":80"],
)
def test_a_bad_hosts_file_line_is_named_with_its_number(line):
    text = "# fleet\ngpu-a:19400\n\n" + line + "\n"
    with pytest.raises(TargetError) as err:
        parse_hosts(text, "hosts.txt")
    assert str(err.value) == f"hosts.txt line 4: {line!r} is not a URL or host:port"


def test_hosts_file_and_scrape_combine_once_each(tmp_path):
    path = tmp_path / "hosts.txt"
    path.write_text("gpu-a:19400\ngpu-b:19400\ngpu-a:19400\n")
    env = {"VRAMTOP_HOSTS_FILE": str(path)}
    settings = config.load(
        env=env, config_file=os.devnull, flags={"scrape": ("http://gpu-b:19400/metrics",)}
    )
    assert scrape_targets(settings) == ("http://gpu-b:19400/metrics", "http://gpu-a:19400/metrics")
    conf = tmp_path / "config.toml"
    conf.write_text(f'hosts_file = "{path}"\n')
    assert config.load(env={}, config_file=str(conf)).hosts_file == str(path)
    path.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="names no targets"):
        scrape_targets(settings)


def test_bad_hosts_files_are_one_sentence_and_exit_2(run_vramtop, tmp_path):
    bad = tmp_path / "hosts.txt"
    bad.write_text("a:1\nb:2\nc:3\n# d\n\nf:6\ngpu-b:port\n")
    out = run_vramtop("--once", "--hosts-file", "hosts.txt", scenario=Scenario())
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == "vramtop: hosts.txt line 7: 'gpu-b:port' is not a URL or host:port\n"

    secret = tmp_path / "secret.txt"
    secret.write_text("http://alice:s3cr3t-pass@gpu b/metrics\n")
    out = run_vramtop("--once", "--hosts-file", str(secret), scenario=Scenario())
    assert out.returncode == 2 and "line 1:" in out.stderr and "s3cr3t-pass" not in out.stderr

    for path, why in (
        ("missing.txt", "missing.txt: hosts file not found"),
        (str(tmp_path), "cannot read hosts file: it is a directory"),
    ):
        out = run_vramtop("--once", "--hosts-file", path, scenario=Scenario())
        assert out.returncode == 2 and why in out.stderr, out.stderr
        assert out.stderr.count("\n") == 1


def test_a_host_is_up_while_any_of_its_targets_answers():
    vllm = BadServer("127.0.0.11")  # its vLLM answers, its exporter's port is closed
    vllm.mode, vllm.text = "metrics", _vllm(2)
    exporter = f"http://127.0.0.11:{closed_port('127.0.0.11')}/metrics"
    src = ScrapeSource(
        [Endpoint(vllm.url + "/metrics"), Endpoint(exporter, timeout=2)],
        list(load_all().values()),
        first_gap=0.05,
    )
    try:
        reading = src.poll()
    finally:
        src.close()
        vllm.close()
    (host,) = reading.hosts
    assert host.instance == "127.0.0.11" and host.up and host.last_seen is not None
    assert host.detail.startswith(f"1 of 2 targets down: metrics at {exporter} are unreachable")
    assert [(f.instance, f.queue_length) for f in reading.models[0].by_instance] == [
        ("127.0.0.11", 2)
    ]


def test_a_target_on_this_machine_is_this_machine(fleet, run_vramtop):
    # A loopback --scrape on a GPU box (its vLLM, its own exporter) makes no second host.
    url = fleet["127.0.0.2"].replace("127.0.0.2", "localhost")
    out = run_vramtop("--once", "--format", "json", "--scrape", url, scenario=Scenario())
    doc = json.loads(out.stdout)
    assert doc["hosts"] == [], doc["hosts"]
