"""LLM servers' /metrics as the real servers name them, with values the tests plant exactly.

Each exporter serves fixed gauges and counters that grow at a fixed slope (value = slope x
(seconds since start + 1000): no counter starts near zero, so Prometheus's rate() is exact).
Histograms are planted as cumulative bucket slopes whose quantiles follow from the buckets by
histogram_quantile's linear interpolation.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from vramtop.demo.families.out import escape_label_value, format_value

Sample = tuple[str, dict[str, str], float, bool]  # name, labels, value or slope, grows

# Buckets whose p95 is 0.3 and p50 is 0.1 * 5/9: 90 % of requests under 0.1 s, all under 0.5 s.
TTFT_BUCKETS = ((0.1, 0.9), (0.5, 1.0), (math.inf, 1.0))
TTFT_P95 = 0.1 + 0.4 * (0.95 - 0.9) / 0.1
TTFT_P50 = 0.1 * 0.5 / 0.9
# 90 % under 20 ms, all under 50 ms: p95 35 ms.
ITL_BUCKETS = ((0.02, 0.9), (0.05, 1.0), (math.inf, 1.0))
ITL_P95 = 0.02 + 0.03 * 0.5
# 90 % under 1 s, all under 5 s: p95 3 s.
E2E_BUCKETS = ((1.0, 0.9), (5.0, 1.0), (math.inf, 1.0))
E2E_P95 = 3.0


def gauge(name: str, labels: Mapping[str, str], value: float) -> list[Sample]:
    return [(name, dict(labels), value, False)]


def counter(name: str, labels: Mapping[str, str], per_second: float) -> list[Sample]:
    return [(name, dict(labels), per_second, True)]


def histogram(
    name: str, labels: Mapping[str, str], per_second: float, buckets: Iterable[tuple[float, float]]
) -> list[Sample]:
    """``buckets``: (le, share of requests at or under it), cumulative."""
    out = [
        (f"{name}_bucket", {**labels, "le": format_value(le)}, per_second * share, True)
        for le, share in buckets
    ]
    out.append((f"{name}_count", dict(labels), per_second, True))
    out.append((f"{name}_sum", dict(labels), per_second * 0.1, True))
    return out


class Exporter:
    """Serves ``samples`` on /metrics from a daemon thread."""

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples
        self.started = time.time()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"

    def render(self) -> str:
        elapsed = time.time() - self.started + 1000.0
        lines = []
        for name, labels, value, grows in self.samples:
            shown = value * elapsed if grows else value
            text = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{text}}} {format_value(shown)}" if text else f"{name} {shown}")
        return "\n".join(lines) + "\n"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def vllm_current(model: str = "llama") -> list[Sample]:
    lab = {"model_name": model, "engine": "0"}
    return [
        *gauge("vllm:num_requests_running", lab, 7),
        *gauge("vllm:num_requests_waiting", lab, 3),
        *gauge("vllm:kv_cache_usage_perc", lab, 0.625),
        *counter("vllm:request_success_total", {**lab, "finished_reason": "stop"}, 10),
        *counter("vllm:num_preemptions_total", lab, 0.5),
        *counter("vllm:prompt_tokens_total", lab, 2000),
        *counter("vllm:generation_tokens_total", lab, 500),
        *counter("vllm:prefix_cache_hits_total", lab, 300),
        *counter("vllm:prefix_cache_queries_total", lab, 1000),
        *histogram("vllm:e2e_request_latency_seconds", lab, 10, E2E_BUCKETS),
        *histogram("vllm:time_to_first_token_seconds", lab, 10, TTFT_BUCKETS),
        *histogram("vllm:inter_token_latency_seconds", lab, 500, ITL_BUCKETS),
        *histogram("vllm:request_queue_time_seconds", lab, 10, TTFT_BUCKETS),
    ]


def vllm_legacy(model: str = "old-llama") -> list[Sample]:
    """vLLM before 0.10: gpu_cache_usage_perc, time_per_output_token_seconds, gpu_prefix_*;
    no queue-time histogram; a TTFT histogram that saw no requests."""
    lab = {"model_name": model}
    return [
        *gauge("vllm:num_requests_running", lab, 2),
        *gauge("vllm:num_requests_waiting", lab, 0),
        *gauge("vllm:gpu_cache_usage_perc", lab, 0.25),
        *counter("vllm:request_success_total", {**lab, "finished_reason": "stop"}, 4),
        *counter("vllm:gpu_prefix_cache_hits_total", lab, 100),
        *counter("vllm:gpu_prefix_cache_queries_total", lab, 400),
        *histogram("vllm:e2e_request_latency_seconds", lab, 4, E2E_BUCKETS),
        *histogram("vllm:time_to_first_token_seconds", lab, 0, TTFT_BUCKETS),
        *histogram("vllm:time_per_output_token_seconds", lab, 200, ITL_BUCKETS),
    ]


def sglang(model: str = "qwen") -> list[Sample]:
    """Scheduler gauges once per tensor-parallel rank (the max is the model's)."""
    lab = {"model_name": model}
    out: list[Sample] = []
    for rank, usage in (("0", 0.4), ("1", 0.45)):
        sched = {**lab, "tp_rank": rank}
        out += gauge("sglang:num_running_reqs", sched, 4)
        out += gauge("sglang:num_queue_reqs", sched, 2)
        out += gauge("sglang:token_usage", sched, usage)
        out += gauge("sglang:cache_hit_rate", sched, 0.5)
    return [
        *out,
        *counter("sglang:num_requests_total", lab, 10),
        *counter("sglang:num_aborted_requests_total", lab, 0),
        *counter("sglang:prompt_tokens_total", lab, 100),
        *counter("sglang:generation_tokens_total", lab, 40),
        *histogram("sglang:e2e_request_latency_seconds", lab, 10, E2E_BUCKETS),
        *histogram("sglang:time_to_first_token_seconds", lab, 10, TTFT_BUCKETS),
        *histogram("sglang:inter_token_latency_seconds", lab, 40, ITL_BUCKETS),
    ]


def tgi() -> list[Sample]:
    """No model label: the scrape job names the model. Counters without _total."""
    return [
        *gauge("tgi_queue_size", {}, 1),
        *gauge("tgi_batch_current_size", {}, 6),
        *counter("tgi_request_count", {}, 4),
        *counter("tgi_request_failure", {"err": "generation"}, 0),
        *histogram("tgi_request_duration", {}, 4, E2E_BUCKETS),
        *histogram("tgi_request_mean_time_per_token_duration", {}, 4, ITL_BUCKETS),
        *counter("tgi_request_generated_tokens_sum", {}, 200),
        *counter("tgi_request_generated_tokens_count", {}, 4),
        *counter("tgi_request_input_length_sum", {}, 800),
        *counter("tgi_request_input_length_count", {}, 4),
    ]


def triton(model: str = "resnet", summaries: bool = False) -> list[Sample]:
    """Default metrics: cumulative microseconds, no quantiles (mean 12 ms, queue 1 ms);
    ``summaries``: as with --metrics-config summary_latencies=true."""
    lab = {"model": model, "version": "1"}
    out = [
        *counter("nv_inference_request_success", lab, 50),
        *counter("nv_inference_request_failure", {**lab, "reason": "BACKEND"}, 0),
        *counter("nv_inference_request_duration_us", lab, 50 * 12_000),
        *counter("nv_inference_queue_duration_us", lab, 50 * 1_000),
        *gauge("nv_inference_pending_request_count", lab, 2),
    ]
    if summaries:
        for q, us in (("0.5", 8_000), ("0.95", 20_000), ("0.99", 30_000)):
            out += gauge("nv_inference_request_summary_us", {**lab, "quantile": q}, us)
        out += gauge("nv_inference_queue_summary_us", {**lab, "quantile": "0.95"}, 1_500)
    return out


def llamacpp() -> list[Sample]:
    """llama-server --metrics: no labels at all (one model per server, the job names it)."""
    return [
        *gauge("llamacpp:requests_processing", {}, 2),
        *gauge("llamacpp:requests_deferred", {}, 1),
        *gauge("llamacpp:kv_cache_usage_ratio", {}, 0.375),
        *gauge("llamacpp:prompt_tokens_seconds", {}, 150.5),
        *gauge("llamacpp:predicted_tokens_seconds", {}, 41.25),
        *counter("llamacpp:prompt_tokens_total", {}, 150),
        *counter("llamacpp:tokens_predicted_total", {}, 40),
    ]
