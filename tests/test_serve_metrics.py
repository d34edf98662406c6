"""`vramtop --serve-metrics` end to end: the real CLI as a child process over the fake NVML,
real sleeping children as the model servers, scraped over HTTP on 127.0.0.1 and read back with
prometheus_client's own parsers."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fakenvml import fake_env
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families
from prometheus_client.parser import text_string_to_metric_families

from vramtop import __version__
from vramtop.demo.scenario import Gpu, Process, Scenario

GIB = 2**30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Exporter:
    def __init__(self, child: subprocess.Popen, url: str) -> None:
        self.child, self.url = child, url
        self.context: ssl.SSLContext | None = None

    def get(self, accept: str | None = None) -> tuple[str, str]:
        request = urllib.request.Request(self.url, headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(request, timeout=10, context=self.context) as answer:
            return answer.headers["Content-Type"], answer.read().decode()

    def samples(self) -> dict[str, list]:
        """name -> samples, once the first frame is in (source_up appears with it)."""
        deadline = time.monotonic() + 30
        while True:
            _, body = self.get()
            found: dict[str, list] = {}
            for family in text_string_to_metric_families(body):
                for s in family.samples:
                    found.setdefault(s.name, []).append(s)
            if "vramtop_source_up" in found:
                return found
            assert time.monotonic() < deadline, body
            time.sleep(0.1)


@pytest.fixture
def serve(fake_lib: Path, tmp_path: Path):
    """``serve(scenario, *flags, env=...)``: a running exporter on a free port."""
    children: list[subprocess.Popen] = []

    def start(scenario: Scenario, *flags: str, env: dict | None = None) -> Exporter:
        path = tmp_path / "scenario.toml"
        scenario.write(path)
        base = {k: v for k, v in os.environ.items() if not k.startswith("VRAMTOP_")}
        base["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
        full = fake_env(fake_lib, path, base) | (env or {})
        args = flags if env and "VRAMTOP_SERVE_METRICS" in env else ("--serve-metrics", *flags)
        child = subprocess.Popen(
            [sys.executable, "-m", "vramtop", *args, "--interval", "0.5"],
            stderr=subprocess.PIPE,
            text=True,
            env=full,
            cwd=tmp_path,
        )
        children.append(child)
        assert child.stderr is not None
        line = child.stderr.readline()  # written once the port is bound
        assert re.match(r"vramtop: serving metrics on https?://127\.0\.0\.1:", line), line
        return Exporter(child, line.split(" on ", 1)[1].split(",", 1)[0])

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stderr.close()


def host_with(llama: list[int], other: int, unknown: int) -> Scenario:
    return Scenario(
        gpus=(
            Gpu(
                uuid="GPU-aaaa-1111",
                memory_used=40 * GIB,
                utilization_gpu=75,
                processes=(Process(llama[0], 20 * GIB), Process(llama[1], 10 * GIB)),
            ),
            Gpu(
                uuid="GPU-bbbb-2222",
                memory_used=8 * GIB,
                errors={"utilization": "NOT_SUPPORTED"},
                processes=(Process(other, 5 * GIB), Process(unknown, None)),
            ),
        )
    )


def by_labels(samples: list, *keys: str) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels[k] for k in keys): s.value for s in samples}


def test_exact_values_absent_not_zero_and_no_command_lines(serve, spawn):
    a = spawn("vllm", "serve", "--served-model-name", "llama-3-8b")
    b = spawn("vllm", "serve", "--served-model-name", "llama-3-8b")
    c = spawn("--model", "org/m")
    d = spawn("--model", "qwen-secret-flag")
    exporter = serve(host_with([a.pid, b.pid], c.pid, d.pid), "127.0.0.1:0")
    got = exporter.samples()
    assert by_labels(got["vramtop_model_vram_bytes"], "model", "gpu", "gpu_uuid") == {
        ("llama-3-8b", "0", "GPU-aaaa-1111"): 30 * GIB,
        ("org/m", "1", "GPU-bbbb-2222"): 5 * GIB,
        # qwen's usage is unknown to NVML: absent, not 0
    }
    assert by_labels(got["vramtop_model_processes"], "model") == {
        ("llama-3-8b",): 2,
        ("org/m",): 1,
        ("qwen-secret-flag",): 1,
    }
    keys = ("gpu", "gpu_uuid", "name")
    name = "NVIDIA H100 80GB HBM3"
    assert by_labels(got["vramtop_gpu_memory_used_bytes"], *keys) == {
        ("0", "GPU-aaaa-1111", name): 40 * GIB,
        ("1", "GPU-bbbb-2222", name): 8 * GIB,
    }
    assert by_labels(got["vramtop_gpu_memory_total_bytes"], *keys) == {
        ("0", "GPU-aaaa-1111", name): 85899345920,
        ("1", "GPU-bbbb-2222", name): 85899345920,
    }
    # GPU 1 cannot report utilisation: its series is absent
    assert by_labels(got["vramtop_gpu_utilization_ratio"], *keys) == {
        ("0", "GPU-aaaa-1111", name): 0.75
    }
    both = {("0", "GPU-aaaa-1111", name), ("1", "GPU-bbbb-2222", name)}
    assert by_labels(got["vramtop_gpu_temperature_celsius"], *keys) == dict.fromkeys(both, 30)
    assert by_labels(got["vramtop_gpu_power_watts"], *keys) == dict.fromkeys(both, 70)
    assert by_labels(got["vramtop_gpu_power_limit_watts"], *keys) == dict.fromkeys(both, 700)
    assert by_labels(got["vramtop_build_info"], "version") == {(__version__,): 1}
    assert by_labels(got["vramtop_source_up"], "source")[("nvml",)] == 1
    assert "vramtop_process_vram_bytes" not in got  # off by default: pids churn
    _, body = exporter.get()
    for secret in ("--served-model-name", "time.sleep", "vllm serve", sys.executable):
        assert secret not in body


def test_processes_flag_and_openmetrics(serve, spawn):
    a = spawn("--model", "org/m")
    b = spawn("--model", "org/m")
    exporter = serve(
        host_with([a.pid, b.pid], a.pid, b.pid), "127.0.0.1:0", "--serve-metrics-processes"
    )
    got = exporter.samples()
    user = __import__("getpass").getuser()
    assert by_labels(got["vramtop_process_vram_bytes"], "model", "gpu_uuid", "pid", "user") == {
        ("org/m", "GPU-aaaa-1111", str(a.pid), user): 20 * GIB,
        ("org/m", "GPU-aaaa-1111", str(b.pid), user): 10 * GIB,
        ("org/m", "GPU-bbbb-2222", str(a.pid), user): 5 * GIB,
        # b's usage on GPU 1 is unknown: absent
    }
    kind, body = exporter.get("application/openmetrics-text; version=1.0.0")
    assert kind.startswith("application/openmetrics-text") and body.endswith("# EOF\n")
    names = {f.name for f in om_families(body)}
    assert {"vramtop_model_vram_bytes", "vramtop_build_info"} <= names


def test_failed_source_is_a_gauge_and_sigterm_exits_0(serve):
    closed = f"http://127.0.0.1:{free_port()}/metrics"  # nothing listens there
    exporter = serve(Scenario(gpus=(Gpu(uuid="GPU-aaaa-1111"),)), "127.0.0.1:0", "--scrape", closed)
    up = by_labels(exporter.samples()["vramtop_source_up"], "source")
    assert up[("scrape",)] == 0 and up[("nvml",)] == 1
    exporter.child.send_signal(signal.SIGTERM)
    assert exporter.child.wait(timeout=20) == 0


def test_environment_turns_it_on_and_sigint_exits_0(serve):
    env = {"VRAMTOP_SERVE_METRICS": "127.0.0.1:0"}
    exporter = serve(Scenario(gpus=(Gpu(uuid="GPU-aaaa-1111"),)), env=env)
    assert by_labels(exporter.samples()["vramtop_gpu_memory_used_bytes"], "gpu") == {("0",): 0}
    exporter.child.send_signal(signal.SIGINT)
    assert exporter.child.wait(timeout=20) == 0


def test_port_in_use_is_one_sentence_exit_2(run_vramtop):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = run_vramtop("--serve-metrics", f"127.0.0.1:{port}", scenario=Scenario())
    assert out.returncode == 2
    assert (
        out.stderr == f"vramtop: cannot serve metrics on 127.0.0.1:{port}: Address already in use\n"
    )


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (["--serve-metrics", "70000"], "--serve-metrics must be [ADDR:]PORT"),
        (["--serve-metrics", "host:port"], "--serve-metrics must be [ADDR:]PORT"),
        (["--serve-metrics", "1", "--once"], "it cannot be used with --once"),
        (["--serve-metrics", "no-such-host.invalid:1"], "cannot serve metrics on"),
    ],
)
def test_bad_input_is_one_sentence_exit_2(run_vramtop, args, sentence):
    out = run_vramtop(*args, scenario=Scenario())
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith("vramtop: ") and sentence in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_a_real_prometheus_scrapes_it(serve, spawn, prometheus, run_vramtop):
    child = spawn("--model", "org/m")
    scenario = Scenario(gpus=(Gpu(uuid="GPU-cccc-3333", processes=(Process(child.pid, 6 * GIB),)),))
    exporter = serve(scenario, "127.0.0.1:0")
    target = prometheus.add_target(exporter.url, job="vramtop-exporter")
    try:
        prometheus.wait_until_scraped(target)
        (sample,) = prometheus.wait_for(f"vramtop_model_vram_bytes{{{target.selector}}}")
        assert sample.value == 6 * GIB
        assert {k: sample.labels[k] for k in ("model", "gpu", "gpu_uuid")} == {
            "model": "org/m",
            "gpu": "0",
            "gpu_uuid": "GPU-cccc-3333",
        }
        assert prometheus.value(f'vramtop_source_up{{source="nvml",{target.selector}}}') == 1
        # From a laptop: the vramtop profile reads the model's VRAM per instance back.
        args = ["--once", "--json", "--prometheus", prometheus.url, "--profile", "vramtop"]
        out = run_vramtop(*args, "--instance", re.escape(target.address))
        assert out.returncode == 0, out.stderr
        (model,) = json.loads(out.stdout)["models"]
        assert (model["name"], model["vram_bytes"]) == ("org/m", 6 * GIB)
    finally:
        target.remove()  # the session's Prometheus serves other tests after this one


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make the test certificate (Debian package openssl)"
    d: Path = tmp_path_factory.mktemp("serve-tls")
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"),
            *("-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")),
        ],
        check=True,
        capture_output=True,
    )
    return d / "cert.pem", d / "key.pem"


def test_https_with_client_certificates(serve, certificate):
    cert, key = certificate
    flags = ["--serve-metrics-cert", str(cert), "--serve-metrics-key", str(key)]
    flags += ["--serve-metrics-client-ca", str(cert)]
    exporter = serve(Scenario(gpus=(Gpu(uuid="GPU-aaaa-1111"),)), "127.0.0.1:0", *flags)
    assert exporter.url.startswith("https://")
    exporter.context = ssl.create_default_context(cafile=str(cert))
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        exporter.get()  # no client certificate: refused
    exporter.context.load_cert_chain(cert, key)
    assert "vramtop_gpu_memory_used_bytes" in exporter.samples()


def test_tls_flags_bad_input(run_vramtop, tmp_path):
    half = run_vramtop("--serve-metrics", "0", "--serve-metrics-cert", "c.pem")
    assert half.returncode == 2
    assert half.stderr == "vramtop: --serve-metrics-cert and --serve-metrics-key go together\n"
    missing = ["--serve-metrics-cert", "nope.pem", "--serve-metrics-key", "nope.key"]
    out = run_vramtop("--serve-metrics", "127.0.0.1:0", *missing, scenario=Scenario())
    assert out.returncode == 2 and out.stderr.count("\n") == 1
    assert "nope.pem is not a readable file" in out.stderr


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("19400", ("0.0.0.0", 19400)),
        (":19400", ("0.0.0.0", 19400)),
        ("127.0.0.1:9", ("127.0.0.1", 9)),
        ("[::1]:19400", ("::1", 19400)),
        ("gpu-host-1:0", ("gpu-host-1", 0)),
    ],
)
def test_address_forms_in_the_environment(raw, parsed):
    from vramtop.config import load

    settings = load(env={"VRAMTOP_SERVE_METRICS": raw, "HOME": "/nonexistent"})
    assert settings.serve_metrics == parsed


def test_config_file_key_and_its_bad_value(tmp_path):
    from vramtop.config import ConfigError, load

    path = tmp_path / "config.toml"
    path.write_text("serve_metrics = 19400\nserve_metrics_processes = true\n")
    settings = load(env={}, config_file=str(path))
    assert settings.serve_metrics == ("0.0.0.0", 19400) and settings.serve_metrics_processes
    path.write_text('serve_metrics = "1.2.3.4"\n')
    with pytest.raises(ConfigError, match=r"key 'serve_metrics' must be \[ADDR:\]PORT"):
        load(env={}, config_file=str(path))
