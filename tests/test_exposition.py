"""Reading /metrics with prometheus_client's parsers: bad lines and bad values are skipped and
reported, never the whole target; non-finite and impossible values reach no output as numbers.
Real loopback servers, the real ScrapeSource and the real CLI."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client import exposition as prom_text
from prometheus_client.openmetrics import exposition as prom_om

from vramtop.demo.scenario import Scenario
from vramtop.profiles import load_all
from vramtop.sources.exposition import TooManySeries, read
from vramtop.sources.http import Endpoint
from vramtop.sources.scrape import ScrapeSource

OM_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"
TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def strict_json(text: str) -> object:
    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in JSON output")

    return json.loads(text, parse_constant=refuse)


class MetricsServer:
    """A loopback server answering every GET with fixed metrics text and content type."""

    def __init__(self, body: str, content_type: str = TEXT_TYPE) -> None:
        self.body, self.content_type = body, content_type
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                data = outer.body.encode()
                self.send_response(200)
                self.send_header("Content-Type", outer.content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/metrics"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def serving(body: str, content_type: str = TEXT_TYPE) -> Iterator[MetricsServer]:
    server = MetricsServer(body, content_type)
    try:
        yield server
    finally:
        server.close()


# -- the parser --------------------------------------------------------------------------------

GOOD = (
    "# HELP vllm:num_requests_waiting Waiting.\n"
    "# TYPE vllm:num_requests_waiting gauge\n"
    'vllm:num_requests_waiting{model_name="a"} 4\n'
    'vllm:num_requests_waiting{model_name="b"} 2\n'
)


@pytest.mark.parametrize(
    "bad",
    [
        'vllm:num_requests_waiting{model_name="c" 1',  # bad label syntax
        "vllm:num_requests_waiting{model_name=c} 1",  # unquoted label value
        'vllm:num_requests_waiting{model_name="c"} abc',  # value not a number
        'x_bucket{le="abc",model_name="c"} 1',  # le not a number
        'x{quantile="high",model_name="c"} 1',  # quantile not a number
        'vllm:num_requests_waiting{model_name="b"} 2',  # duplicate series
        "9bad_name 1",  # not a metric name
        'vllm:num_requests_waiting{model_name="c"}',  # no value
    ],
)
def test_one_bad_line_is_skipped_and_reported(bad):
    for text in (GOOD + bad + "\n", bad + "\n" + GOOD, GOOD + bad):  # also as a cut last line
        got = read(text)
        assert got.skipped == 1, (text, got)
        assert got.problem
        waiting = got.samples["vllm:num_requests_waiting"]
        assert waiting[(("model_name", "a"),)] == 4 and waiting[(("model_name", "b"),)] == 2


def test_line_numbers_and_several_bad_lines():
    text = GOOD + 'x{a="1" 2\ny 3\nz{a="b"} nope\n'
    got = read(text)
    assert got.skipped == 2 and got.problem.startswith("line 5:")
    assert got.samples["y"] == {(): 3.0}


def test_openmetrics_constructs_are_read_in_either_format():
    om = (
        "# TYPE req counter\n"
        'req_total{model="m"} 7 1520879607.789 # {trace_id="abc"} 1 1520879607.789\n'
        'req_created{model="m"} 1520879600.5 1520879607.789\n'
        "# TYPE lat histogram\n"
        'lat_bucket{model="m",le="0.1"} 2 # {trace_id="x"} 0.05\n'
        'lat_bucket{model="m",le="+Inf"} 3\n'
        'lat_count{model="m"} 3\nlat_sum{model="m"} 0.4\n'
        "# EOF\n"
    )
    for content_type in (OM_TYPE, TEXT_TYPE):
        got = read(om, content_type)
        assert got.samples["req_total"] == {(("model", "m"),): 7.0}, content_type
        assert got.samples["lat_bucket"][(("le", "+Inf"), ("model", "m"))] == 3.0
        assert got.samples["lat_count"][(("model", "m"),)] == 3.0


def test_openmetrics_faults_of_the_whole_keep_every_series():
    cut = "# TYPE q gauge\nq 1\nr 2\n"  # no # EOF: the answer was cut short
    mixed = '# TYPE c counter\nc_total{a="1"} 1 100\nc_created{a="1"} 5\n# EOF\n'  # one timestamp
    for text, names in ((cut, {"q", "r"}), (mixed, {"c_total", "c_created"})):
        got = read(text, OM_TYPE)
        assert got.skipped == 1 and got.problem, text
        assert names <= set(got.samples)


def test_both_formats_give_the_same_samples():
    registry = CollectorRegistry()
    Counter("jobs", "Jobs.", ["model"], registry=registry).labels("m").inc(3)
    Gauge("depth", "Depth.", ["model"], registry=registry).labels("m").set(2)
    Histogram("lat_seconds", "Lat.", ["model"], registry=registry).labels("m").observe(0.2)
    Summary("size", "Size.", ["model"], registry=registry).labels("m").observe(5)
    text = read(prom_text.generate_latest(registry).decode(), TEXT_TYPE)
    om = read(prom_om.generate_latest(registry).decode(), OM_TYPE)
    assert text.skipped == 0 and om.skipped == 0
    names = {"jobs_total", "depth", "lat_seconds_bucket", "lat_seconds_count", "size_sum"}
    assert names <= set(text.samples)
    for name in names:
        assert text.samples[name] == om.samples[name], name


def test_counters_keep_their_names_as_written():
    text = (
        "# TYPE nv_inference_request_success counter\n"
        'nv_inference_request_success{model="m"} 10\n'
        "# TYPE vllm:request_success_total counter\n"
        'vllm:request_success_total{model_name="m"} 4\n'
    )
    got = read(text)
    assert got.samples["nv_inference_request_success"] == {(("model", "m"),): 10.0}
    assert got.samples["vllm:request_success_total"] == {(("model_name", "m"),): 4.0}
    assert "nv_inference_request_success_total" not in got.samples


def test_values_beyond_floats_are_kept_as_values():
    got = read("a NaN\nb +Inf\nc -Inf\nd 1e308\ne " + "9" * 400 + "\nf -1\n")
    s = {k: v[()] for k, v in got.samples.items()}
    assert math.isnan(s["a"]) and s["b"] == math.inf and s["c"] == -math.inf
    assert s["d"] == 1e308 and s["e"] == math.inf and s["f"] == -1
    assert got.skipped == 0


def test_the_series_cap_stops_before_building():
    text = "# TYPE x gauge\n" + "".join(f'x{{i="{i}"}} 1\n' for i in range(1001))
    with pytest.raises(TooManySeries):
        read(text, max_series=1000)
    assert len(read(text, max_series=1001).samples["x"]) == 1001
    assert len(read(text, max_series=0).samples["x"]) == 1001  # 0: no cap


# -- the scrape source, against a real server --------------------------------------------------


def poll_once(url: str, **kw):
    src = ScrapeSource([Endpoint(url)], list(load_all().values()), first_gap=0.05, **kw)
    try:
        return src.poll()
    finally:
        src.close()


HOSTILE_VLLM = (
    "# TYPE vllm:num_requests_waiting gauge\n"
    'vllm:num_requests_waiting{model_name="good"} 4\n'
    'vllm:num_requests_waiting{model_name="bad" 4\n'
    'vllm:num_requests_running{model_name="good"} 1\n'
    "# TYPE vllm:e2e_request_latency_seconds histogram\n"
    'vllm:e2e_request_latency_seconds_bucket{model_name="good",le="abc"} 1\n'
    'vllm:e2e_request_latency_seconds_bucket{model_name="good",le="+Inf"} 1\n'
    'vllm:e2e_request_latency_seconds_count{model_name="good"} 1\n'
    'vllm:kv_cache_usage_perc{model_name="good"} 0.5 1520879607.789\n'
    'vllm:request_success_total{model_name="good",finished_reason="stop"} 9 # {t="1"} 1\n'
    'vllm:num_requests_running{model_name="good",engine="1"} nope\n'
)


@pytest.mark.parametrize("content_type", [TEXT_TYPE, OM_TYPE])
def test_scrape_skips_bad_lines_and_keeps_the_target(content_type):
    with serving(HOSTILE_VLLM, content_type) as server:
        reading = poll_once(server.url)
    good = {m.name: m for m in reading.models}["good"]
    assert good.queue_length == 4 and good.extras["kv_cache_usage_ratio"] == 0.5
    assert good.requests_per_second == 0  # read twice, unchanged: a rate of zero
    assert "skipped 3 malformed lines of metrics at" in reading.note, reading.note
    assert "line 3:" in reading.note


def test_scrape_series_cap_names_the_setting():
    body = "".join(f'vllm:num_requests_waiting{{model_name="m{i}"}} 1\n' for i in range(50))
    with serving(body) as server, pytest.raises(Exception) as caught:
        poll_once(server.url, max_series=10)
    assert "more than 10 series" in str(caught.value) and "max_series" in str(caught.value)


FACESOCIAL = "# TYPE model_queue_length gauge\n" + "".join(
    f'model_queue_length{{model="{name}"}} {value}\n'
    f'model_memory_usage_bytes{{model="{name}"}} {value}\n'
    f'model_errors_total{{model="{name}"}} {value}\n'
    for name, value in [
        ("m_nan", "NaN"),
        ("m_pinf", "+Inf"),
        ("m_ninf", "-Inf"),
        ("huge", "1e308"),
        ("big", "1e20"),
        ("neg", "-1"),
        ("zero", "0"),
    ]
)


def test_non_finite_and_impossible_values_are_null_with_a_reason():
    with serving(FACESOCIAL) as server:
        models = {m.name: m for m in poll_once(server.url).models}
    for name in ("m_nan", "m_pinf", "m_ninf"):
        m = models[name]
        assert m.queue_length is None and m.vram_bytes is None
        assert "reported" in m.unavailable["queue"] and "reported" in m.unavailable["vram"]
    for name in ("huge", "big", "neg"):
        assert models[name].vram_bytes is None, name
        assert "not a possible size" in models[name].unavailable["vram"]
    assert models["huge"].queue_length == 1e308 and models["neg"].queue_length == -1
    assert models["zero"].vram_bytes == 0 and models["zero"].queue_length == 0


def test_cli_json_is_strict_with_hostile_metrics(run_vramtop):
    with serving(FACESOCIAL + HOSTILE_VLLM) as server:
        out = run_vramtop("--once", "--json", "--scrape", server.url, scenario=Scenario())
        texts = [
            run_vramtop("--once", "--format", f, "--scrape", server.url, scenario=Scenario())
            for f in ("text", "markdown")
        ]
    assert out.returncode == 0, out.stderr
    doc = strict_json(out.stdout)
    models = {m["name"]: m for m in doc["models"]}
    assert models["good"]["queue_length"] == 4
    assert models["m_nan"]["queue_length"] is None and "queue" in models["m_nan"]["unavailable"]
    assert models["huge"]["vram_bytes"] is None and "vram" in models["huge"]["unavailable"]
    scrape = {s["name"]: s for s in doc["sources"]}["scrape"]
    assert scrape["status"] == "ok" and "skipped 3 malformed lines" in scrape["detail"]
    for text in texts:
        assert text.returncode == 0 and "m" in text.stdout
        assert not re.search(r"\b(nan|inf|infinity)\b", text.stdout, re.IGNORECASE), text.stdout
        assert not re.search(r"\d{20}", text.stdout), "a huge value printed in full"


def test_openmetrics_with_exemplars_through_the_scrape_source():
    registry = CollectorRegistry()
    errors = Counter("model_errors", "Errors.", ["model"], registry=registry)
    errors.labels("om").inc(5, exemplar={"trace_id": "abc"})
    Gauge("model_queue_length", "Q.", ["model"], registry=registry).labels("om").set(3)
    Gauge("model_memory_usage_bytes", "M.", ["model"], registry=registry).labels("om").set(2**30)
    lat = Histogram("model_inference_duration_seconds", "L.", ["model"], registry=registry)
    lat.labels("om").observe(0.3, exemplar={"trace_id": "def"})
    om_body = prom_om.generate_latest(registry).decode()
    assert "# {" in om_body and om_body.rstrip().endswith("# EOF")  # exemplars really sent
    text_body = prom_text.generate_latest(registry).decode()
    seen = {}
    for body, content_type in ((om_body, OM_TYPE), (text_body, TEXT_TYPE)):
        with serving(body, content_type) as server:
            reading = poll_once(server.url)
        assert reading.note == "", reading.note
        seen[content_type] = {m.name: m for m in reading.models}["om"]
    for m in seen.values():
        assert m.profile == "facesocial" and m.queue_length == 3 and m.vram_bytes == 2**30
        assert m.requests_per_second == 0 and m.error_ratio == 0  # 0 of 0, read twice
    # Alike but for where they were read (a missing figure's reason names the server).
    for m in seen.values():
        why = m.unavailable["extras.timeouts_per_second"]
        assert re.fullmatch(r"metric `model_timeout` not found on 127\.0\.0\.1:\d+", why), why
    assert replace(seen[OM_TYPE], instances=(), unavailable={}) == replace(
        seen[TEXT_TYPE], instances=(), unavailable={}
    )
    assert set(seen[OM_TYPE].unavailable) == set(seen[TEXT_TYPE].unavailable)
