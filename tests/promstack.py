"""Real Prometheus, Alertmanager and node_exporter for the test session (a pytest plugin).

Enabled by ``pytest_plugins = ["promstack"]``. Each server runs once per session on 127.0.0.1
with a free port and temporary storage. Prometheus scrapes every second, evaluates vramtop's
shipped rules plus ``tests/rules/live.rules.yml`` every second, sends alerts to the session's
Alertmanager, and discovers scrape targets from ``file_sd`` files, so tests add and remove
targets without a restart. Prometheus 2.x applies discovered targets on a 5 s tick (discovery,
then the scrape manager), so a new target is first scraped 1-10 s after ``add_target``: add a
module's targets together and wait once.

A missing binary fails the tests that need it, with the Debian package to install; it never
skips them.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

REPO = Path(__file__).resolve().parent.parent
SHIPPED_RULES = REPO / "vramtop" / "rules" / "facesocial.rules.yml"
LIVE_RULES = Path(__file__).resolve().parent / "rules" / "live.rules.yml"
START_TIMEOUT_S = 30
PORT_TRIES = 5
_LOOPBACK = {"127.0.0.1", "localhost"}
_ids = itertools.count(1)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH: install the Debian package {package} "
            "(bash tests/run.sh installs it)",
            pytrace=False,
        )
    return path


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal for ``value``."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _write_atomically(path: Path, text: str) -> None:
    # file_sd watches a glob: write under a name it ignores, then rename into place.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class _Server:
    """One server process on a free port, with stderr captured to a file."""

    def __init__(
        self, name: str, argv: Callable[[int], list[str]], workdir: Path, ready_path: str
    ) -> None:
        self.name, self._argv, self.workdir, self._ready_path = name, argv, workdir, ready_path
        self.stderr_path = workdir / f"{name}.stderr"
        self.port = 0
        self._proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> None:
        for _ in range(PORT_TRIES):
            self.port = free_port()
            with self.stderr_path.open("wb") as err:
                self._proc = subprocess.Popen(
                    self._argv(self.port),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    cwd=self.workdir,
                )
            if self._wait_ready():
                return
            if "address already in use" not in self.tail().lower():
                break
        self.stop()
        pytest.fail(f"{self.name} did not become ready:\n{self.tail()}", pytrace=False)

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        assert self._proc is not None
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                if httpx.get(self.url + self._ready_path, timeout=1).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        return False

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no stderr captured)"
        return "\n".join(text.splitlines()[-lines:]) or "(stderr is empty)"

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


@dataclass(frozen=True, slots=True)
class Sample:
    labels: dict[str, str]
    value: float


@dataclass(slots=True)
class Target:
    """A scrape target registered through file_sd; ``address`` is its ``instance`` label."""

    address: str
    job: str
    honor_labels: bool
    file: Path
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def selector(self) -> str:
        return f"job={promql_string(self.job)},instance={promql_string(self.address)}"

    def remove(self) -> None:
        self.file.unlink(missing_ok=True)


class Prometheus:
    """A Prometheus (or any server with its query API: VictoriaMetrics) and what tests ask it."""

    def __init__(self, server: _Server, sd_dir: Path | None = None) -> None:
        self._server, self._sd_dir = server, sd_dir or server.workdir / "sd"
        self.url = server.url
        self._http = httpx.Client(base_url=self.url, timeout=10)

    def stop(self) -> None:
        self._http.close()
        self._server.stop()

    def add_target(
        self,
        url_or_hostport: str,
        job: str = "sim",
        honor_labels: bool = False,
        labels: dict[str, str] | None = None,
    ) -> Target:
        """Scrapes ``http://host:port/path`` (or ``host:port``, path /metrics) from now on."""
        parts = urlsplit(url_or_hostport if "://" in url_or_hostport else f"//{url_or_hostport}")
        if parts.hostname not in _LOOPBACK or parts.port is None:
            raise ValueError(f"tests scrape only 127.0.0.1:<port>, not {url_or_hostport!r}")
        address = f"{parts.hostname}:{parts.port}"
        group_labels = {"job": job, **(labels or {})}
        if parts.path and parts.path != "/metrics":
            group_labels["__metrics_path__"] = parts.path
        kind = "honor" if honor_labels else "plain"
        path = self._sd_dir / kind / f"target-{next(_ids)}.json"
        _write_atomically(path, json.dumps([{"targets": [address], "labels": group_labels}]))
        return Target(address, job, honor_labels, path, dict(labels or {}))

    def remove_target(self, target: Target) -> None:
        target.remove()

    def _api(self, path: str, **params: Any) -> Any:
        response = self._http.get(path, params=params)
        try:
            body = response.json()
        except ValueError:
            text = response.text[:300]
            raise AssertionError(f"{path}: HTTP {response.status_code}: {text}") from None
        if body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, promql: str) -> list[Sample]:
        """An instant query; an error (bad PromQL, ...) raises AssertionError with its text."""
        data = self._api("/api/v1/query", query=promql)
        if data["resultType"] == "scalar":
            return [Sample({}, float(data["result"][1]))]
        if data["resultType"] != "vector":
            raise AssertionError(f"{promql}: expected a vector, got {data['resultType']}")
        return [Sample(r["metric"], float(r["value"][1])) for r in data["result"]]

    def value(self, promql: str) -> float:
        """The value of a query that returns exactly one sample."""
        result = self.query(promql)
        if len(result) != 1:
            raise AssertionError(f"{promql}: expected one sample, got {result}")
        return result[0].value

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[list[Sample]], bool] = bool,
        timeout: float = 30,
    ) -> list[Sample]:
        """Repeats the query until ``predicate(result)`` holds; fails after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                last = result = self.query(promql)
                if predicate(result):
                    return result
            except (AssertionError, httpx.HTTPError) as exc:
                last = exc
            if time.monotonic() >= deadline:
                pytest.fail(f"after {timeout} s, {promql!r} still gives {last!r}", pytrace=False)
            time.sleep(0.25)

    def wait_until_scraped(self, target: Target, history_s: int = 0, timeout: float = 40) -> None:
        """Waits for a successful scrape of ``target`` and, with ``history_s``, until
        Prometheus holds that many seconds of its samples, so ``rate(x[<history_s>s])`` is no
        longer biased low by a partly empty window."""
        self.wait_for(f"up{{{target.selector}}} == 1", timeout=timeout)
        if history_s:
            self.wait_for(
                f"count_over_time(up{{{target.selector}}}[{history_s}s]) >= {history_s}",
                timeout=timeout,
            )

    def alerts(self) -> list[dict]:
        """Prometheus's active alerts, pending and firing (``state``)."""
        return self._api("/api/v1/alerts")["alerts"]

    def rules(self) -> list[dict]:
        return self._api("/api/v1/rules")["groups"]

    def alertmanagers(self) -> list[str]:
        return [am["url"] for am in self._api("/api/v1/alertmanagers")["activeAlertmanagers"]]

    def wait_for_alertmanagers(self, timeout: float = 30) -> list[str]:
        """Alertmanagers are discovered like targets: up to ~5 s after Prometheus starts."""
        deadline = time.monotonic() + timeout
        while not (found := self.alertmanagers()):
            if time.monotonic() >= deadline:
                pytest.fail(f"Prometheus found no Alertmanager in {timeout} s", pytrace=False)
            time.sleep(0.25)
        return found


class Alertmanager:
    def __init__(self, server: _Server) -> None:
        self._server = server
        self.url = server.url
        self._http = httpx.Client(base_url=self.url, timeout=10)

    def alerts(self) -> list[dict]:
        response = self._http.get("/api/v2/alerts")
        response.raise_for_status()
        return response.json()

    def wait_for_alert(
        self,
        labels: dict[str, str],
        predicate: Callable[[dict], bool] = lambda alert: True,
        timeout: float = 30,
    ) -> dict:
        """Waits for an alert whose labels include ``labels`` and that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        while True:
            matching = [a for a in self.alerts() if labels.items() <= a["labels"].items()]
            for alert in matching:
                if predicate(alert):
                    return alert
            if time.monotonic() >= deadline:
                pytest.fail(
                    f"after {timeout} s, no Alertmanager alert with {labels} passes the check; "
                    f"matching: {matching}",
                    pytrace=False,
                )
            time.sleep(0.25)

    def silence(
        self, matchers: dict[str, str], duration_s: float = 3600, comment: str = "vramtop tests"
    ) -> str:
        """Creates a silence with equality matchers; returns its id."""
        now = datetime.now(UTC)
        body = {
            "matchers": [
                {"name": k, "value": v, "isRegex": False, "isEqual": True}
                for k, v in matchers.items()
            ],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(seconds=duration_s)).isoformat(),
            "createdBy": "vramtop-tests",
            "comment": comment,
        }
        response = self._http.post("/api/v2/silences", json=body)
        response.raise_for_status()
        return response.json()["silenceID"]

    def expire_silence(self, silence_id: str) -> None:
        self._http.delete(f"/api/v2/silence/{silence_id}").raise_for_status()


def _prometheus_config(sd_dir: Path, alertmanager: str) -> dict:
    def sd(kind: str) -> list[dict]:
        return [{"files": [str(sd_dir / kind / "*.json")], "refresh_interval": "5s"}]

    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(SHIPPED_RULES), str(LIVE_RULES)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [
            {"job_name": "sim", "file_sd_configs": sd("plain")},
            {"job_name": "sim-honor", "honor_labels": True, "file_sd_configs": sd("honor")},
        ],
    }


_ALERTMANAGER_CONFIG = {
    "route": {
        "receiver": "null",
        "group_wait": "1s",
        "group_interval": "1s",
        "repeat_interval": "1h",
    },
    "receivers": [{"name": "null"}],
}


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alertmanager]:
    binary = require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    workdir = tmp_path_factory.mktemp("alertmanager")
    config = workdir / "alertmanager.yml"
    config.write_text(json.dumps(_ALERTMANAGER_CONFIG))  # JSON is YAML
    server = _Server(
        "alertmanager",
        lambda port: [
            binary,
            f"--config.file={config}",
            f"--storage.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # else it binds *:9094 for gossip
        ],
        workdir,
        "/-/ready",
    )
    server.start()
    yield Alertmanager(server)
    server.stop()


@pytest.fixture(scope="session")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, alertmanager: Alertmanager
) -> Iterator[Prometheus]:
    binary = require_binary("prometheus", "prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    sd_dir = workdir / "sd"
    for kind in ("plain", "honor"):
        (sd_dir / kind).mkdir(parents=True)
    config = workdir / "prometheus.yml"
    config.write_text(json.dumps(_prometheus_config(sd_dir, alertmanager._server.address)))
    server = _Server(
        "prometheus",
        lambda port: [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        workdir,
        "/-/ready",
    )
    server.start()
    yield Prometheus(server, sd_dir)
    server.stop()


class StaticExposition:
    """A /metrics on 127.0.0.1 that says what ``text`` holds (a test may change it between
    scrapes)."""

    def __init__(self, text: str) -> None:
        self.text = text
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = outer.text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_prometheus(workdir: Path, config: dict, name: str = "prometheus") -> Prometheus:
    """One more Prometheus with its own configuration (static targets, ``external_labels``,
    ``remote_write``), beside the session's: the caller stops it."""
    binary = require_binary("prometheus", "prometheus")
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "prometheus.yml"
    path.write_text(json.dumps(config))  # JSON is YAML
    server = _Server(
        name,
        lambda port: [
            binary,
            f"--config.file={path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        workdir,
        "/-/ready",
    )
    server.start()
    return Prometheus(server)


def start_victoria_metrics(workdir: Path) -> Prometheus:
    """A single-node VictoriaMetrics (Debian ``victoria-metrics``): remote write at
    ``/api/v1/write``, Prometheus's query API at ``/api/v1/query``. Its defaults hide samples
    younger than 30 s (``-search.latencyOffset``) and cache answers: both off for tests."""
    binary = require_binary("victoria-metrics", "victoria-metrics")
    workdir.mkdir(parents=True, exist_ok=True)
    server = _Server(
        "victoria-metrics",
        lambda port: [
            binary,
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-storageDataPath={workdir / 'data'}",
            "-retentionPeriod=1d",
            "-search.latencyOffset=0s",
            "-search.disableCache",
        ],
        workdir,
        "/health",
    )
    server.start()
    return Prometheus(server)


@dataclass(frozen=True, slots=True)
class NodeExporter:
    url: str
    target: Target


@pytest.fixture(scope="session")
def node_exporter(
    tmp_path_factory: pytest.TempPathFactory, prometheus: Prometheus
) -> Iterator[NodeExporter]:
    binary = require_binary("prometheus-node-exporter", "prometheus-node-exporter")
    workdir = tmp_path_factory.mktemp("node_exporter")
    collectors = ("cpu", "meminfo", "filesystem", "loadavg")  # no network or hardware probes
    server = _Server(
        "node_exporter",
        lambda port: [
            binary,
            f"--web.listen-address=127.0.0.1:{port}",
            "--collector.disable-defaults",
            *(f"--collector.{c}" for c in collectors),
        ],
        workdir,
        "/metrics",
    )
    server.start()
    target = prometheus.add_target(server.address, job="node")
    yield NodeExporter(f"{server.url}/metrics", target)
    target.remove()
    server.stop()
