"""A real Prometheus for the benchmark, on 127.0.0.1 with a free port and temporary storage.

Factored from tests/promstack.py (which depends on pytest): the same config shape (1 s scrapes
and rule evaluation, file_sd targets so targets can be added later without a restart), plus a
``scale`` job with a slower scrape for the exporters that simulate a fleet.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

START_TIMEOUT_S = 30
PORT_TRIES = 5
KINDS = ("plain", "honor", "scale")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Prometheus:
    def __init__(self, workdir: Path, rule_files: list[Path], scale_interval_s: int = 5) -> None:
        self.workdir = workdir
        self.sd_dir = workdir / "sd"
        self._rule_files = rule_files
        self._scale_interval = scale_interval_s
        self._proc: subprocess.Popen | None = None
        self._ids = 0
        self.port = 0
        self._http: httpx.Client | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def _config(self) -> dict:
        def job(name: str, kind: str, **extra: Any) -> dict:
            files = [str(self.sd_dir / kind / "*.json")]
            sd = [{"files": files, "refresh_interval": "5s"}]
            return {"job_name": name, "file_sd_configs": sd, **extra}

        scale = f"{self._scale_interval}s"
        return {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(p) for p in self._rule_files],
            "scrape_configs": [
                job("bench", "plain"),
                job("bench-honor", "honor", honor_labels=True),
                job(
                    "bench-scale",
                    "scale",
                    honor_labels=True,
                    scrape_interval=scale,
                    scrape_timeout=scale,
                ),
            ],
        }

    def start(self) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not on PATH: apt-get install prometheus")
        for kind in KINDS:
            (self.sd_dir / kind).mkdir(parents=True, exist_ok=True)
        config = self.workdir / "prometheus.yml"
        config.write_text(json.dumps(self._config()))  # JSON is YAML
        stderr_path = self.workdir / "prometheus.stderr"
        for _ in range(PORT_TRIES):
            self.port = free_port()
            with stderr_path.open("wb") as err:
                self._proc = subprocess.Popen(
                    [
                        binary,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={self.workdir / 'data'}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    cwd=self.workdir,
                )
            if self._wait_ready():
                self._http = httpx.Client(base_url=self.url, timeout=30)
                return
            tail = stderr_path.read_text(errors="replace")[-2000:]
            self.stop()
            if "address already in use" not in tail.lower():
                raise RuntimeError(f"prometheus did not start:\n{tail}")
        raise RuntimeError("prometheus found no free port")

    def _wait_ready(self) -> bool:
        assert self._proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return False
            try:
                if httpx.get(self.url + "/-/ready", timeout=1).status_code == 200:
                    return True
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        return False

    def add_target(self, address: str, kind: str, labels: dict[str, str] | None = None) -> Path:
        """Scrape ``host:port`` (path /metrics) from now on, in job ``kind``; delete the
        returned file to stop."""
        self._ids += 1
        path = self.sd_dir / kind / f"target-{self._ids}.json"
        tmp = path.with_name(f".{path.name}.tmp")  # outside the glob until renamed
        tmp.write_text(json.dumps([{"targets": [address], "labels": labels or {}}]))
        os.replace(tmp, path)
        return path

    def query(self, promql: str) -> list[dict]:
        assert self._http is not None
        body = self._http.get("/api/v1/query", params={"query": promql}).json()
        if body.get("status") != "success":
            raise RuntimeError(f"{promql}: {body.get('error')}")
        return body["data"]["result"]

    def wait_for(
        self, promql: str, ok: Callable[[list[dict]], bool], timeout: float, what: str
    ) -> None:
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                last = result = self.query(promql)
                if ok(result):
                    return
            except (RuntimeError, httpx.HTTPError) as err:
                last = err
            time.sleep(0.5)
        raise RuntimeError(f"waited {timeout:g} s for {what}; last answer: {str(last)[:300]}")

    def value(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
