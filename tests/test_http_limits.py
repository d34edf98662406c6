"""Every request is bounded (a deadline for the whole exchange, a cap on the body), every server
fault is its own sentence, and no mode outlives its output: real loopback servers that misbehave
byte by byte (tests/badserver.py) and the real CLI as a child process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from badserver import BadServer
from fakenvml import fake_env

from vramtop.demo.scenario import Gpu, Scenario
from vramtop.profiles import load_all
from vramtop.sources.alerts import AlertSource
from vramtop.sources.base import SourceError
from vramtop.sources.http import Endpoint
from vramtop.sources.promql import PromSource
from vramtop.sources.scrape import ScrapeSource

TOKEN = "tok-9f8e7d6c5b4a-secret"
KIB = 1024
RECORD = ("--interval", "0.2", "--timeout", "60", "--prometheus")
LIVE = ("--interval", "1", "--timeout", "60", "--prometheus")
EMPTY_VECTOR = {"status": "success", "data": {"resultType": "vector", "result": []}}


@pytest.fixture
def bad():
    server = BadServer()
    yield server
    server.close()


def _poll(kind: str, url: str, **kw: object) -> str:
    """The sentence a source gives for what the server at ``url`` does."""
    ep = Endpoint(url, **kw)  # type: ignore[arg-type]
    if kind == "prometheus":
        src: object = PromSource(ep, list(load_all().values()))
    elif kind == "alerts":
        src = AlertSource(ep, ep)
    else:
        src = ScrapeSource([Endpoint(url + "/metrics", **kw)], list(load_all().values()))  # type: ignore[arg-type]
    try:
        with pytest.raises(SourceError) as err:
            src.poll()  # type: ignore[attr-defined]
    finally:
        src.close()  # type: ignore[attr-defined]
    return err.value.reason


def _name(kind: str) -> str:
    return {"prometheus": "Prometheus", "alerts": "Prometheus", "scrape": "metrics"}[kind]


# -- a deadline for the whole request ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["prometheus", "alerts", "scrape"])
@pytest.mark.parametrize("mode", ["slowheaders", "slowbody", "hang"])
def test_a_trickling_server_fails_the_request_at_the_timeout(bad, kind, mode):
    """A byte every 0.2 s never trips a per-read timeout: the old code read it for a minute."""
    bad.mode = mode
    started = time.monotonic()
    reason = _poll(kind, bad.url, timeout=0.5)
    assert time.monotonic() - started < 10, "the deadline did not cut the request"
    assert reason.startswith(f"{_name(kind)} at {bad.url}")
    assert "did not answer within 0.5 s" in reason, reason


# -- a cap on the body -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["prometheus", "scrape"])
@pytest.mark.parametrize("mode", ["huge", "hugechunked", "gzipbomb"])
def test_a_body_over_the_cap_is_one_sentence_naming_the_cap(bad, kind, mode):
    """With and without Content-Length, and a small gzip that inflates past the cap."""
    bad.mode, bad.size = mode, 2 * 2**20
    reason = _poll(kind, bad.url, max_bytes=64 * KIB)
    assert reason.startswith(f"{_name(kind)} at {bad.url}")
    assert "sent more than 64 KiB (max_response_bytes)" in reason, reason


def test_a_body_within_the_cap_is_read(bad):
    bad.mode = "metrics"
    bad.text = 'vllm:num_requests_waiting{model_name="m"} 3\n' * 10
    src = ScrapeSource(
        [Endpoint(bad.url + "/metrics", max_bytes=64 * KIB)],
        list(load_all().values()),
        first_gap=0.05,
    )
    reading = src.poll()
    src.close()
    assert [m.name for m in reading.models] == ["m"] and reading.models[0].queue_length == 3


# -- one sentence per fault, never a wrong one -----------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "needle"),
    [
        ("cut", "cut the connection before its answer was complete"),
        ("close", "closed the connection without answering"),
        ("reset", "broke off the connection mid-answer ([Errno 104] Connection reset by peer)"),
        ("badgzip", "sent a compressed body that does not decompress (bad gzip or deflate data)"),
        (
            "redirect",
            "answered with a redirect (HTTP 307) to http://127.0.0.1:1/elsewhere, which vramtop "
            "does not follow: use that URL instead",
        ),
    ],
)
@pytest.mark.parametrize("kind", ["prometheus", "alerts", "scrape"])
def test_each_server_fault_is_its_own_sentence(bad, kind, mode, needle):
    bad.mode = mode
    reason = _poll(kind, bad.url)
    assert reason.startswith(f"{_name(kind)} at {bad.url}") and needle in reason, reason
    for wrong in ("unreachable", "not JSON", "internal error", "\n"):
        assert wrong not in reason


@pytest.mark.parametrize(
    ("location", "shown"),
    [
        (
            "http://bob:pa/ss#w?rd@proxy.example:8080/login?token=abc#x",
            "http://proxy.example:8080/login",
        ),
        ("https://proxy.example/sso?access_token=abc", "https://proxy.example/sso"),
        ("/prometheus/api/v1/query", "/prometheus/api/v1/query"),
        ("http://bob:abc@[::1/bad", "http://[::1/bad"),  # not even a valid URL
    ],
)
@pytest.mark.parametrize("status", [301, 302, 308])
def test_a_redirect_target_is_shown_without_credentials(bad, location, shown, status):
    bad.mode, bad.location, bad.redirect_status = "redirect", location, status
    reason = _poll("prometheus", bad.url)
    target = shown if shown[0] != "/" else bad.url + shown
    assert f"redirect (HTTP {status}) to {target}, which vramtop" in reason, reason
    for secret in ("pa/ss", "rd@", "abc", "bob"):
        assert secret not in reason


def test_an_empty_body_is_said_to_be_empty(bad):
    bad.mode = "empty"
    reason = _poll("prometheus", bad.url)
    assert reason == f"Prometheus at {bad.url} answered HTTP 200 with an empty body"


NOT_PROMETHEUS = "answered JSON that is not a Prometheus API response"


@pytest.mark.parametrize("text", ["[" * 100_000, b'{"a": "\xff"}', "{'a': 1}", "NaN]"])
def test_a_body_that_is_not_json_is_said_so(bad, text):
    """Nesting too deep for the parser, bytes that are not UTF-8, Python instead of JSON."""
    bad.mode, bad.text = "metrics", text
    reason = _poll("prometheus", bad.url)
    assert reason == f"Prometheus at {bad.url} answered HTTP 200 with something that is not JSON"


@pytest.mark.parametrize(
    "body",
    [
        [],
        1,
        "success",
        None,
        {"status": "success", "data": 1},
        {"data": {"result": [1, 2]}},
        {"status": "success", "data": {"resultType": "vector", "result": [1, 2]}},
        {"status": "success", "data": {"resultType": "vector", "result": {"a": 1}}},
        {"status": "success", "data": {"resultType": "vector", "result": [{"metric": 1}]}},
        {"status": "success", "data": {"resultType": "vector", "result": [{"value": "1"}]}},
        {"status": "success", "data": {"resultType": "scalar", "result": [1]}},
        {"status": "banana", "data": {"resultType": "vector", "result": []}},
    ],
)
def test_json_of_the_wrong_shape_is_one_sentence(bad, body):
    bad.body = body
    assert _poll("prometheus", bad.url) == f"Prometheus at {bad.url} {NOT_PROMETHEUS}"


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"status": "success", "data": {"alerts": [1, 2]}},
        {"status": "success", "data": {"alerts": {"a": 1}}},
        {"status": "success", "data": {"alerts": [{"labels": ["alertname", "x"]}]}},
        {"status": "success", "data": {"alerts": [{"labels": {}, "annotations": 3}]}},
        {"status": "success", "data": []},
    ],
)
def test_alerts_of_the_wrong_shape_are_one_sentence(bad, body):
    bad.body = body
    src = AlertSource(Endpoint(bad.url))
    with pytest.raises(SourceError) as err:
        src.poll()
    assert err.value.reason == f"Prometheus at {bad.url} {NOT_PROMETHEUS}"


@pytest.mark.parametrize("body", [{}, [1], [{"labels": "x"}], [{"labels": {}, "annotations": []}]])
def test_alertmanager_answers_of_the_wrong_shape_are_one_sentence(bad, body):
    bad.body = body
    src = AlertSource(None, Endpoint(bad.url))
    with pytest.raises(SourceError) as err:
        src.poll()
    assert err.value.reason == (
        f"Alertmanager at {bad.url} answered JSON that is not an Alertmanager v2 API response"
    )


def test_too_many_series_is_one_sentence_naming_the_cap(bad):
    series = [{"metric": {"i": str(i)}, "value": [0, "1"]} for i in range(5)]
    bad.body = {"status": "success", "data": {"resultType": "vector", "result": series}}
    src = PromSource(Endpoint(bad.url), list(load_all().values()), max_series=4)
    with pytest.raises(SourceError) as err:
        src.poll()
    src.close()
    assert err.value.reason.startswith(
        f"Prometheus at {bad.url} answered more than 4 series for one query (max_series)"
    )


@pytest.mark.parametrize(
    "result",
    [1, [1], [{"values": 5}], [{"values": [[1]]}], [{"values": [["t", "1"]]}]],
)
def test_history_of_the_wrong_shape_is_one_sentence(bad, result):
    bad.body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
    src = PromSource(Endpoint(bad.url), list(load_all().values()))
    with pytest.raises(SourceError) as err:
        src.query_range("up", 0, 60, 15)
    src.close()
    assert err.value.reason == f"Prometheus at {bad.url} {NOT_PROMETHEUS}"


# -- the process never outlives its output ---------------------------------------------------


def _env(fake_lib: Path, tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    path = tmp_path / "scenario.toml"
    Scenario(gpus=(Gpu(uuid="GPU-local"),)).write(path)
    base = {k: v for k, v in os.environ.items() if not k.startswith("VRAMTOP_")}
    base.pop("CUDA_VISIBLE_DEVICES", None)
    base["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env = fake_env(fake_lib, path, base)
    env.update(extra or {})
    return env


def _vramtop(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    # 20 s: the fixed code needs ~3; the old code stayed a minute behind a trickling server.
    return subprocess.run(
        [sys.executable, "-m", "vramtop", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=20,
    )


@pytest.mark.parametrize(
    ("mode", "flags"),
    [
        ("slowheaders", ["--once", "--scrape"]),
        ("slowbody", ["--json", "--scrape"]),
        ("slowbody", ["--once", "--prometheus"]),
        ("slowheaders", ["--json", "--alertmanager"]),
    ],
)
def test_one_shot_exits_promptly_behind_a_trickling_server(fake_lib, tmp_path, bad, mode, flags):
    bad.mode = mode
    out = _vramtop(_env(fake_lib, tmp_path), "--timeout", "1", *flags, bad.url + "/metrics")
    assert out.returncode == 0 and out.stderr == "", out.stderr
    assert "did not answer within 1 s" in out.stdout and "GPU-local" in out.stdout


def test_the_byte_cap_is_a_setting(fake_lib, tmp_path, bad):
    bad.mode, bad.size = "hugechunked", 4 * 2**20
    env = _env(fake_lib, tmp_path, {"VRAMTOP_MAX_RESPONSE_BYTES": str(256 * KIB)})
    out = _vramtop(env, "--json", "--scrape", bad.url + "/metrics")
    assert out.returncode == 0, out.stderr
    (scrape,) = [s for s in json.loads(out.stdout)["sources"] if s["name"] == "scrape"]
    assert scrape["status"] == "error"
    assert "sent more than 256 KiB (max_response_bytes)" in scrape["detail"]


def test_the_series_cap_is_a_setting(fake_lib, tmp_path, bad):
    """Well under the byte cap, far over the series cap: refused before parsing."""
    bad.mode = "metrics"
    bad.text = "# HELP x y\n# TYPE x gauge\n" + "".join(f'x{{i="{i}"}} 1\n' for i in range(5000))
    env = _env(fake_lib, tmp_path, {"VRAMTOP_MAX_SERIES": "1000"})
    out = _vramtop(env, "--json", "--scrape", bad.url + "/metrics")
    assert out.returncode == 0, out.stderr
    (scrape,) = [s for s in json.loads(out.stdout)["sources"] if s["name"] == "scrape"]
    assert scrape["status"] == "error"
    assert scrape["detail"] == (
        f"metrics at {bad.url}/metrics hold more than 1000 series (max_series): raise max_series "
        "(config or VRAMTOP_MAX_SERIES) or scrape a narrower endpoint"
    )
    bad.text = "# HELP x y\n# TYPE x gauge\n" + "".join(f'x{{i="{i}"}} 1\n' for i in range(999))
    out = _vramtop(env, "--json", "--scrape", bad.url + "/metrics")
    (scrape,) = [s for s in json.loads(out.stdout)["sources"] if s["name"] == "scrape"]
    assert scrape["status"] == "ok", scrape


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_a_server_echoing_the_token_never_shows_it(fake_lib, tmp_path, bad, fmt):
    """Prometheus and Alertmanager errors and a /metrics parse error, each quoting the request's
    Authorization header back; the token reached the server but none of the output."""
    bad.mode = "echo"
    other = BadServer()
    other.mode = "echotext"
    try:
        env = _env(fake_lib, tmp_path, {"VRAMTOP_BEARER_TOKEN": TOKEN})
        out = _vramtop(
            env,
            "--format",
            fmt,
            "--prometheus",
            bad.url,
            "--alertmanager",
            bad.url,
            "--scrape",
            other.url + "/metrics",
        )
    finally:
        other.close()
    assert out.returncode == 0, out.stderr
    assert TOKEN not in out.stdout and TOKEN not in out.stderr
    if fmt == "json":  # the text export cuts a long detail before the echoed header
        assert "Authorization: Bearer ***" in out.stdout  # the echo itself is shown, masked
    assert all(r.get("Authorization") == f"Bearer {TOKEN}" for r in bad.requests)


@pytest.mark.parametrize(
    ("url_auth", "env"),
    [
        ("alice:hunter2%2Fpw@", {}),
        ("", {"VRAMTOP_BASIC_AUTH_USER": "bob", "VRAMTOP_BASIC_AUTH_PASSWORD": "hunter2/pw"}),
    ],
)
def test_a_server_echoing_basic_auth_never_shows_it(fake_lib, tmp_path, bad, url_auth, env):
    """Basic credentials travel base64-encoded: an echo of the header shows neither form."""
    import base64

    bad.mode = "echo"
    url = bad.url.replace("http://", f"http://{url_auth}")
    out = _vramtop(_env(fake_lib, tmp_path, env), "--json", "--prometheus", url)
    assert out.returncode == 0, out.stderr
    sent = bad.requests[0]["Authorization"].removeprefix("Basic ")
    assert base64.b64decode(sent).decode().endswith(":hunter2/pw")
    for secret in ("hunter2", sent):
        assert secret not in out.stdout and secret not in out.stderr
    assert "Authorization: Basic ***" in out.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_headless_recording_stops_at_once_while_a_request_hangs(fake_lib, tmp_path, bad, sig):
    from vramtop.record import Recording

    bad.body = EMPTY_VECTOR
    path = tmp_path / "rec.vtr"
    child = subprocess.Popen(
        [sys.executable, "-m", "vramtop", "--record", str(path), "--headless", *RECORD, bad.url],
        env=_env(fake_lib, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while len(bad.requests) < 3:  # a few frames recorded
            assert time.monotonic() < deadline and child.poll() is None, "no frames"
            time.sleep(0.05)
        bad.mode = "hang"
        seen = len(bad.requests)
        while len(bad.requests) == seen:  # a request now hangs for up to 60 s
            assert time.monotonic() < deadline and child.poll() is None, "no hanging request"
            time.sleep(0.05)
        child.send_signal(sig)
        _, err = child.communicate(timeout=15)  # the old code waited out the 60 s
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0, err
    assert err.count("\n") == 1 and err.startswith("vramtop: recording to")
    with Recording.open(str(path)) as rec:
        assert len(rec) >= 1 and rec.frame(len(rec) - 1).gpus[0].uuid == "GPU-local"


@pytest.mark.parametrize("how", ["q", "SIGINT"])
def test_live_view_quits_at_once_while_a_source_hangs(fake_lib, tmp_path, bad, how):
    from test_tui_e2e import Tmux, base_env

    bad.mode = "hang"
    path = tmp_path / "scenario.toml"
    Scenario(gpus=(Gpu(uuid="GPU-live-hang"),)).write(path)
    t = Tmux(tmp_path / "tmux.sock", fake_env(fake_lib, path, base_env(tmp_path)), tmp_path)
    try:
        t.start([sys.executable, "-m", "vramtop", *LIVE, bad.url, "--scrape", bad.url + "/metrics"])
        deadline = time.monotonic() + 30
        while len(bad.requests) < 2:  # both sources are stuck on the server
            assert time.monotonic() < deadline, t.screen()
            time.sleep(0.05)
        if how == "q":
            t.keys("q")
        else:
            shell = int(t.tmux("display", "-p", "-t", "e2e", "#{pane_pid}"))
            (pid,) = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
            os.kill(int(pid), getattr(signal, how))
        # The old code joined the stuck workers: the shell saw no exit for the whole 60 s.
        # SIGINT ends with 0 or 130 depending on where asyncio catches it (see the report).
        codes = ("rc=0",) if how == "q" else ("rc=0", "rc=130")
        screen = t.wait_for(
            lambda s: any(f"VRAMTOP-EXITED {c}" in s for c in codes), "a prompt exit", timeout=15
        )
        assert "Traceback" not in screen
    finally:
        t.kill()


def test_replay_view_quits_at_once(tmp_path):
    """The replay's decoding thread never keeps the process alive either."""
    from test_tui_e2e import Tmux, base_env

    env = base_env(tmp_path)
    env["LD_LIBRARY_PATH"] = "/nonexistent"  # the demo needs no driver
    path = tmp_path / "demo.vtr"
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "vramtop",
            "--demo",
            "--record",
            str(path),
            "--headless",
            "--interval",
            "0.1",
            "--duration",
            "1s",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert made.returncode == 0, made.stderr
    t = Tmux(tmp_path / "tmux.sock", env, tmp_path)
    try:
        t.start([sys.executable, "-m", "vramtop", "--replay", str(path)])
        t.wait_for(lambda s: "llama-3.1-70b" in s, "the replayed frame")
        t.keys("q")
        t.wait_for(lambda s: "VRAMTOP-EXITED rc=0" in s, "a prompt exit", timeout=15)
    finally:
        t.kill()


def test_the_daemon_pool_keeps_order_raises_and_never_holds_the_process():
    import threading

    from vramtop.sources.pool import DaemonPool

    pool = DaemonPool(3, "test-pool")
    assert pool.map(lambda x: x * 2, range(7)) == [0, 2, 4, 6, 8, 10, 12]
    with pytest.raises(SourceError, match="boom 2"):
        pool.map(lambda x: (_ for _ in ()).throw(SourceError(f"boom {x}")) if x else x, [0, 2])
    workers = [t for t in threading.enumerate() if t.name.startswith("test-pool")]
    assert len(workers) == 3 and all(t.daemon for t in workers)
    pool.shutdown()
    with pytest.raises(SourceError, match="closed"):
        pool.map(str, [1])
