"""`vramtop doctor` as a user runs it: the real CLI in a child process against the real
Prometheus and Alertmanager (tests/promstack.py), a simulated vLLM exporter, a scrape target on
a closed port (down), and the fake NVML."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from badserver import BadServer
from promstack import Alertmanager, Prometheus, StaticExposition, Target, free_port

from vramtop.demo.exporter import ModelLoad, SimulatedExporter
from vramtop.demo.scenario import Gpu, Process, Scenario
from vramtop.profiles import load

GIB = 2**30
LLM = {"ttft_p95": 0.3, "kv_cache_usage": 0.42, "preemptions_per_second": 0.5}
HALF = """name = "half"
kind = "model"
model_label = "model_name"
detect = ["vllm:num_requests_running"]

[queue]
gauge = ["vllm:num_requests_waiting"]

[extras.made_up]
gauge = ["vllm:no_such_metric"]
"""


# A server family no profile knows: its model label is model_id.
ACME = """# TYPE acme:requests_total counter
acme:requests_total{model_id="m1"} 10
# TYPE acme:latency_seconds histogram
acme:latency_seconds_bucket{model_id="m1",le="0.5"} 3
acme:latency_seconds_bucket{model_id="m1",le="+Inf"} 4
acme:latency_seconds_sum{model_id="m1"} 1.2
acme:latency_seconds_count{model_id="m1"} 4
# TYPE acme:queue_depth gauge
acme:queue_depth{model_id="m1"} 2
# TYPE acme:build_info gauge
acme:build_info{version="1"} 1
"""


def host_with(pids: list[int]) -> Scenario:
    return Scenario(
        gpus=(
            Gpu(uuid="GPU-aaaa-1111", processes=tuple(Process(p, GIB) for p in pids)),
            Gpu(uuid="GPU-bbbb-2222"),
        )
    )


@dataclass
class Stack:
    prom: Prometheus
    vllm: SimulatedExporter
    up: Target
    down: Target
    acme: Target
    prom_alertmanager: str


@pytest.fixture(scope="module")
def stack(prometheus: Prometheus, alertmanager: Alertmanager) -> Iterator[Stack]:
    vllm = SimulatedExporter("vllm", [ModelLoad("llama-3.1-8b", 5.0, 0.5, 1.5, 3.0, 0.0, 2, **LLM)])
    up = prometheus.add_target(vllm.start(), job="doctor-vllm")
    down = prometheus.add_target(f"127.0.0.1:{free_port()}", job="doctor-down")  # nothing there
    acme_server = StaticExposition(ACME)
    acme = prometheus.add_target(acme_server.address, job="doctor-acme")
    prometheus.wait_until_scraped(up)
    prometheus.wait_until_scraped(acme)
    prometheus.wait_for(f"up{{{down.selector}}} == 0")
    yield Stack(prometheus, vllm, up, down, acme, alertmanager.url.rstrip("/"))
    for target in (up, down, acme):
        target.remove()
    vllm.stop()
    acme_server.stop()


def lines(out: str) -> dict[str, str]:
    """`STATUS  name: message` lines as name -> `STATUS message`."""
    found = {}
    for line in out.splitlines():
        if m := re.match(r"(PASS|WARN|FAIL)  ([^:]+): (.*)", line):
            found[m[2]] = f"{m[1]} {m[3]}"
    return found


def test_a_healthy_stack_passes_and_exits_0(stack, alertmanager: Alertmanager, run_vramtop):
    out = run_vramtop(
        "doctor",
        "--prometheus",
        stack.prom.url,
        "--alertmanager",
        alertmanager.url,
        "--instance",
        re.escape(stack.up.address),
        scenario=Scenario(),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    found = lines(out.stdout)
    assert found["nvml"].startswith("PASS driver")
    assert found["prometheus"].startswith("PASS") and "version 2." in found["prometheus"]
    assert found["targets"] == "PASS all 1 scrape target(s) are up."
    assert (
        found["profile vllm label model_name"]
        == "PASS 1 model(s) on vllm:e2e_request_latency_seconds."
    )
    assert found["profile vllm"].startswith(("PASS", "WARN"))
    assert found["alertmanager"].startswith("PASS")
    assert "FAIL" not in out.stdout and not out.stderr


def test_a_down_target_fails(stack, run_vramtop):
    out = run_vramtop(
        "doctor", "--prometheus", stack.prom.url, "--instance", re.escape(stack.down.address)
    )
    assert out.returncode == 1, out.stderr
    down = lines(out.stdout)["target"]
    assert down.startswith(f"FAIL doctor-down {stack.down.address} is down: ")
    assert "connection refused" in down
    # No --alertmanager: the one Prometheus sends its alerts to is named.
    am = stack.prom_alertmanager
    assert lines(out.stdout)["alertmanager"] == (
        f"PASS Prometheus at {stack.prom.url} sends its alerts to {am}: give --alertmanager "
        "URL to check it and to see silences."
    )


def test_a_half_present_profile_warns_with_what_is_missing(stack, run_vramtop, tmp_path):
    profiles = tmp_path / "xdg" / "vramtop" / "profiles"
    profiles.mkdir(parents=True)
    (profiles / "half.toml").write_text(HALF)
    out = run_vramtop(
        "doctor",
        "--format",
        "json",
        "--prometheus",
        stack.prom.url,
        "--instance",
        re.escape(stack.up.address),
        "--profile",
        "half",
        scenario=Scenario(),
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["ok"] is True and doc["starter_profile"] is None
    checks = {c["name"]: c for c in doc["checks"]}
    half = checks["profile half"]
    assert half["status"] == "WARN"
    assert "1 of 2 figures found" in half["message"]
    assert "extras.made_up (vllm:no_such_metric)" in half["message"]


def test_one_run_finds_the_down_target_the_half_profile_and_the_unknown_family(
    stack, run_vramtop, tmp_path
):
    """The whole stack at once, as a user runs it: exit 1 for the down target, the half-present
    profile a WARN naming what is missing, and a starter profile for the family no profile
    knows, which vramtop's own loader accepts and which reads that family's metrics."""
    profiles = tmp_path / "xdg" / "vramtop" / "profiles"
    profiles.mkdir(parents=True, exist_ok=True)
    (profiles / "half.toml").write_text(HALF)
    three = "|".join(re.escape(t.address) for t in (stack.up, stack.down, stack.acme))
    args = ("doctor", "--prometheus", stack.prom.url, "--instance", three)
    out = run_vramtop(*args, "--format", "json", "--profile", "vllm,half", scenario=Scenario())
    text = run_vramtop(*args, "--profile", "vllm,half", scenario=Scenario())
    assert out.returncode == 1 and text.returncode == 1, out.stderr + text.stderr
    doc = json.loads(out.stdout)
    assert doc["ok"] is False
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["target"]["status"] == "FAIL"
    assert checks["target"]["message"].startswith(f"doctor-down {stack.down.address} is down")
    assert [c["name"] for c in doc["checks"]].count("target") == 1  # the two others are up
    assert checks["prometheus"]["status"] == "PASS"
    half = checks["profile half"]
    assert half["status"] == "WARN" and "1 of 2 figures found" in half["message"]
    assert "extras.made_up (vllm:no_such_metric)" in half["message"]
    assert checks["profile vllm label model_name"]["message"].startswith("1 model(s)")
    family = checks["family"]
    assert family["status"] == "WARN" and family["message"].startswith("no profile knows acme on")
    # vLLM's metrics outside its profile are still vLLM's: only acme is unknown.
    starter = tmp_path / "custom.toml"
    starter.write_text(doc["starter_profile"])
    profile = load(starter)
    assert profile.model_label == "model_id" and profile.detect
    assert profile.series["latency"].metrics == ("acme:latency_seconds",)
    assert profile.series["requests"].metrics == ("acme:requests_total",)
    assert profile.series["extras.acme_queue_depth"].metrics == ("acme:queue_depth",)
    assert all(m.startswith("acme:") for s in profile.series.values() for m in s.metrics)
    assert "acme:build_info" not in doc["starter_profile"]  # no model label
    assert doc["starter_profile"] in text.stdout and "FAIL  target: doctor-down" in text.stdout


def test_prometheus_down_is_one_fail_line_and_no_secret(run_vramtop):
    port = free_port()
    out = run_vramtop(
        "doctor",
        "--prometheus",
        f"http://127.0.0.1:{port}",
        "--timeout",
        "2",
        env={"VRAMTOP_BEARER_TOKEN": "s3cret-token-value"},
    )
    assert out.returncode == 1
    assert lines(out.stdout)["prometheus"] == (
        f"FAIL Prometheus at http://127.0.0.1:{port}: cannot connect (nothing listening, "
        "or the host is unreachable)."
    )
    assert "Traceback" not in out.stderr and "s3cret" not in out.stdout + out.stderr


def test_scrape_of_a_known_family_checks_its_metrics(stack, run_vramtop):
    out = run_vramtop("doctor", "--scrape", stack.vllm.url, scenario=Scenario())
    assert out.returncode == 0, out.stdout + out.stderr
    found = lines(out.stdout)
    assert found["scrape"].startswith("PASS")
    assert found["profile vllm"].startswith(("PASS", "WARN"))
    assert "starter profile" not in out.stdout


def test_scrape_of_a_server_without_a_model_label_says_what_names_its_model(run_vramtop):
    load = ModelLoad("ignored", 1.0, 1.0, 2.0, 3.0, 0.0, 0, running=2, kv_cache_usage=0.3)
    with (
        SimulatedExporter("llamacpp", [load]) as llama,
        SimulatedExporter("vllm", [ModelLoad("a", 1.0, 0.1, 0.2, 0.3, 0.0, 1)]) as vllm,
    ):
        url = llama.url
        out = run_vramtop("doctor", "--scrape", url, "--scrape", vllm.url, scenario=Scenario())
    assert out.returncode == 0, out.stdout + out.stderr
    found = lines(out.stdout)
    assert found["profile llamacpp"] == f"PASS all 5 figures found on /metrics at {url}."
    assert found["profile llamacpp label job"] == (
        "WARN llamacpp:requests_deferred carries no 'job' label, so no figure is per model "
        "(read directly, nothing names the model: read it through Prometheus, whose job label "
        "does)."
    )
    assert found["profile vllm label model_name"] == (
        "PASS 1 model(s) on vllm:e2e_request_latency_seconds."
    )


def test_scrape_of_an_unknown_family_prints_a_starter_profile(run_vramtop, tmp_path):
    # SGLang's server, checked with only the vLLM profile: to doctor, an unknown family (and
    # the profile asked for is absent: a FAIL, exit 1).
    with SimulatedExporter("sglang", [ModelLoad("qwen", 8.0, 0.1, 0.4, 0.8, 0.0, 3)]) as sglang:
        out = run_vramtop(
            "doctor",
            "--format",
            "json",
            "--scrape",
            sglang.url,
            "--profile",
            "vllm",
            scenario=Scenario(),
        )
        text = run_vramtop("doctor", "--scrape", sglang.url, "--profile", "vllm")
    assert out.returncode == 1, out.stderr
    doc = json.loads(out.stdout)
    assert doc["ok"] is False
    assert {c["name"]: c for c in doc["checks"]}["profile vllm"]["status"] == "FAIL"
    family = {c["name"]: c for c in doc["checks"]}["family"]
    assert family["status"] == "WARN"
    starter = tmp_path / "custom.toml"
    starter.write_text(doc["starter_profile"])
    profile = load(starter)  # vramtop's own loader accepts it
    assert profile.kind == "model" and profile.model_label == "model_name"
    assert "latency" in profile.series and "requests" in profile.series
    assert all(m.startswith("sglang:") for s in profile.series.values() for m in s.metrics)
    assert doc["starter_profile"] in text.stdout


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("hang", "no answer within 1 s (--timeout)"),
        ("slowbody", "no answer within 1 s (--timeout)"),
        ("notjson", "answered, but not with the API's JSON (the wrong URL, or a proxy page)"),
        ("unauthorized", "refused access (HTTP 401): check the token or password"),
        ("cut", "the connection broke off in the middle of the answer"),
        ("badgzip", "sent a body that does not decompress"),
    ],
)
def test_a_slow_or_wrong_prometheus_is_one_sentence(mode, why, run_vramtop):
    server = BadServer()
    server.mode = mode
    try:
        out = run_vramtop(
            "doctor",
            "--prometheus",
            server.url,
            "--timeout",
            "1",
            env={"VRAMTOP_BEARER_TOKEN": "s3cret-token-value"},
        )
    finally:
        server.close()
    assert out.returncode == 1
    assert lines(out.stdout)["prometheus"] == f"FAIL Prometheus at {server.url}: {why}."
    # The token went to the server, and nowhere else.
    assert server.requests[0]["Authorization"] == "Bearer s3cret-token-value"
    assert "s3cret" not in out.stdout + out.stderr and "Traceback" not in out.stderr


def test_gpu_processes_in_another_pid_namespace_warn(run_vramtop):
    hidden = 4_000_000  # above any pid_max: no process here has it
    out = run_vramtop("doctor", scenario=host_with([os.getpid(), hidden]))
    assert out.returncode == 0, out.stdout + out.stderr
    found = lines(out.stdout)
    assert found["nvml"] == "PASS driver 550.54.15, 2 GPU(s) reachable."
    assert found["pid namespace"].startswith(
        f"WARN 1 GPU process(es) NVML reports are not visible here (pid {hidden}): "
    )


def test_no_driver_fails_without_a_remote_and_bad_flags_exit_2(run_vramtop):
    out = run_vramtop("doctor")  # the fake NVML without a scenario fails to initialise
    assert out.returncode == 1 and lines(out.stdout)["nvml"].startswith("FAIL ")
    assert "vramtop doctor" in run_vramtop("--help").stdout
    assert "--prometheus URL" in run_vramtop("doctor", "--help").stdout
    bad = run_vramtop("doctor", "--timeout", "soon")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("vramtop: ") and len(bad.stderr.splitlines()) == 1
