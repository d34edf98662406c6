"""The histogram request at a fleet's size (promlate.py), against a real Prometheus behind a
proxy that holds that request while the test says so: a big fleet's refresh returns without
it, with the last figures and their age, and asks it every EVERY s; a small one waits for it
each refresh, as before."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from promstack import Prometheus

from vramtop.demo.exporter import ModelLoad, SimulatedExporter
from vramtop.profiles import load_all
from vramtop.sources.http import Endpoint
from vramtop.sources.promlate import EVERY, HOLD, LATE_FROM
from vramtop.sources.promql import PromSource


class HoldingProxy:
    """Prometheus's API, except that while ``held`` is clear a query over histogram buckets
    waits (the slow request of a big fleet, made as slow as the test needs)."""

    def __init__(self, upstream: str) -> None:
        self.open = threading.Event()
        self.open.set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if b"_bucket" in body:
                    outer.open.wait(60)
                ctype = self.headers.get("Content-Type", "")
                r = httpx.post(upstream + self.path, content=body, headers={"Content-Type": ctype})
                self.send_response(r.status_code)
                self.send_header("Content-Type", r.headers.get("Content-Type", ""))
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self.open.set()
        self._server.shutdown()
        self._server.server_close()


def _served(prometheus: Prometheus, models: int, history_s: int = 4) -> Iterator[str]:
    loads = [ModelLoad(f"m{i:03d}", 5.0, 0.2, 0.5 + i / 1000, 1.0) for i in range(models)]
    exporter = SimulatedExporter("vllm", loads)
    target = prometheus.add_target(exporter.start(), job=f"late-{models}")
    prometheus.wait_until_scraped(target, history_s=history_s)
    yield target.address
    target.remove()
    exporter.stop()


@pytest.fixture(scope="module")
def big(prometheus: Prometheus) -> Iterator[str]:
    # LATE_FROM replicas (one p95 each); history for refreshes EVERY s back
    yield from _served(prometheus, LATE_FROM, history_s=int(EVERY) + 6)


@pytest.fixture(scope="module")
def small(prometheus: Prometheus) -> Iterator[str]:
    yield from _served(prometheus, 3)


@pytest.fixture
def proxy(prometheus: Prometheus) -> Iterator[HoldingProxy]:
    p = HoldingProxy(prometheus.url)
    yield p
    p.stop()


def _source(proxy: HoldingProxy, instance: str, back: list[float] | None = None) -> PromSource:
    """Evaluated ``back[0]`` seconds in the past, where given."""
    clock = time.time if back is None else (lambda: time.time() - back[0])
    vllm = load_all()["vllm"]
    return PromSource(Endpoint(proxy.url), [vllm], True, instance, "5s", clock=clock)


def _p95(reading) -> dict[str, float | None]:
    return {m.name: m.latency_p95_seconds for m in reading.models}


def test_a_big_fleets_refresh_does_not_wait_for_the_histogram_request(big, proxy):
    back = [EVERY + 1]
    src = _source(proxy, big, back)
    try:
        first = src.poll()  # no answer to show yet: waits for it
        proxy.open.clear()
        back[0] = 0  # EVERY + 1 s later: due again, and held by the proxy
        second = src.poll()
        third = src.poll()  # still running: not asked again
        proxy.open.set()
        fourth = src.poll()
    finally:
        src.close()
    assert first.note == "" and len(first.models) == LATE_FROM
    assert _p95(first)["m007"] == pytest.approx(0.507, rel=1e-6)
    age = second.note.removeprefix("latency percentiles from ").partition(" s ago")
    assert age[1] and float(age[0]) >= EVERY, second.note
    # the last answer, exactly: quantiles and each replica's p95; the rest is this refresh's
    assert _p95(second) == _p95(third) == _p95(first)
    replicas = [[f.latency_p95_seconds for f in m.by_instance] for m in first.models]
    assert [[f.latency_p95_seconds for f in m.by_instance] for m in second.models] == replicas
    assert second.models[0].requests_per_second is not None
    assert (first.queries, second.queries, third.queries) == (2, 2, 1)
    # the held answer, once in; not due again
    assert fourth.queries == 1 and all(p is not None for p in _p95(fourth).values())


def test_a_small_fleets_refresh_waits_for_the_histogram_request(small, proxy):
    src = _source(proxy, small)
    try:
        src.poll()
        proxy.open.clear()
        threading.Timer(HOLD + 1.0, proxy.open.set).start()  # past the hold of a big fleet
        reading = src.poll()
    finally:
        src.close()
    assert reading.note == "", "its own histogram figures, however long they took"
    assert _p95(reading)["m001"] == pytest.approx(0.501, rel=1e-6)
    assert reading.queries == 2
