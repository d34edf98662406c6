"""What ``--scrape`` asks a server for and reads back, end to end: the real CLI against
prometheus_client's own WSGI app, which answers the format the Accept header asks for."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from test_exposition import strict_json

from vramtop.demo.scenario import Scenario


class NegotiatingServer:
    """prometheus_client's own WSGI app, which answers OpenMetrics only when Accept asks for it;
    every request first observes ten TTFTs of 0.2 s and ten successes, each with an exemplar,
    so the one-shot's two scrapes see them grow."""

    def __init__(self) -> None:
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        from prometheus_client import make_wsgi_app

        registry = CollectorRegistry()
        lab = ["model_name"]
        Gauge("vllm:num_requests_running", "R.", lab, registry=registry).labels("om").set(5)
        Gauge("vllm:num_requests_waiting", "W.", lab, registry=registry).labels("om").set(3)
        Gauge("vllm:kv_cache_usage_perc", "KV.", lab, registry=registry).labels("om").set(0.42)
        self.ttft = Histogram("vllm:time_to_first_token_seconds", "T.", lab, registry=registry)
        self.ok = Counter("vllm:request_success", "S.", lab, registry=registry)
        self.content_types: list[str] = []
        app = make_wsgi_app(registry)

        def observing(environ, start_response):  # type: ignore[no-untyped-def]
            for _ in range(10):
                self.ttft.labels("om").observe(0.2, exemplar={"trace_id": "t1"})
            self.ok.labels("om").inc(10, exemplar={"trace_id": "t2"})

            def start(status, headers, exc_info=None):  # type: ignore[no-untyped-def]
                self.content_types += [v for k, v in headers if k.lower() == "content-type"]
                return start_response(status, headers, exc_info)

            return app(environ, start)

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

        self.httpd = make_server("127.0.0.1", 0, observing, handler_class=Quiet)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/metrics"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


OM_ACCEPT = "Accept: application/openmetrics-text; version=1.0.0; escaping=allow-utf-8"


def test_openmetrics_with_exemplars_through_the_cli(run_vramtop):
    """vramtop asks for the text format first (its parser is the cheaper one); a server may
    answer OpenMetrics all the same (here asked for with --header): exemplars, _created and
    # EOF are read, and both give the same figures."""
    server = NegotiatingServer()
    docs = {}
    try:
        for name, extra in (("text", ()), ("openmetrics", ("--header", OM_ACCEPT))):
            out = run_vramtop(
                "--once", "--json", "--scrape", server.url, *extra, scenario=Scenario()
            )
            assert out.returncode == 0, out.stderr
            docs[name] = strict_json(out.stdout)
    finally:
        server.close()
    text_types, om_types = server.content_types[:2], server.content_types[2:]
    assert text_types and all(c.startswith("text/plain; version=1.0.0") for c in text_types)
    assert om_types and all(c.startswith("application/openmetrics-text") for c in om_types)
    for name, doc in docs.items():
        scrape = {s["name"]: s for s in doc["sources"]}["scrape"]
        assert scrape["status"] == "ok" and not scrape["detail"], (name, scrape)
        m = {m["name"]: m for m in doc["models"]}["om"]
        assert m["profile"] == "vllm" and m["queue_length"] == 3, name
        assert m["extras"]["kv_cache_usage_ratio"] == 0.42, name
        assert m["extras"]["running_requests"] == 5, name
        # 10 new observations of 0.2 s between the scrapes, in the (0.1, 0.25] bucket:
        # histogram_quantile's interpolation gives 0.1 + 0.15 * 9.5 / 10.
        assert m["extras"]["ttft_p95_seconds"] == pytest.approx(0.2425), name
        assert m["requests_per_second"] > 0, name
