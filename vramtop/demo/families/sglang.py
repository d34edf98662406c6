"""SGLang: scheduler gauges per tensor-parallel rank, request counters and histograms."""

from __future__ import annotations

from vramtop.demo.families.out import Gpus, Models, Options, Out, at, by_p95

# The server's own default buckets, next to which the simulated quantile boundaries are placed.
SGLANG_LATENCY = (0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400)
SGLANG_ITL = (0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.06, 0.1, 0.2)
SGLANG_QUEUE = (0.0, 0.1, 0.2, 0.5, 1, 2, 3, 4, 5, 10, 15, 20, 30, 40, 50, 60, 100, 200, 300)


def sglang(out: Out, models: Models, gpus: Gpus, o: Options) -> None:
    for m in models:
        lab, rps = at({"model_name": m.name}, m.instance), m.requests_per_second
        queue = by_p95(m.queue_time_p95)
        for rank in range(m.tp_size):
            # Scheduler metrics: one series per TP rank, each rank seeing every request.
            sched = {**lab, "engine_type": "unified", "tp_rank": str(rank), "pp_rank": "0"}
            out.gauge("sglang:num_running_reqs", sched, m.running)
            out.gauge("sglang:num_queue_reqs", sched, m.queue_length)
            out.gauge("sglang:token_usage", sched, m.kv_cache_usage or 0.0)
            out.gauge("sglang:gen_throughput", sched, m.generation_tokens_per_second)
            if m.prefix_cache_hit_ratio is not None:
                out.gauge("sglang:cache_hit_rate", sched, m.prefix_cache_hit_ratio)
            if queue:
                out.histogram("sglang:queue_time_seconds", sched, queue, rps, SGLANG_QUEUE)
        out.counter("sglang:num_requests_total", lab, rps)
        out.counter("sglang:num_aborted_requests_total", lab, rps * m.error_ratio)
        out.counter("sglang:prompt_tokens_total", lab, m.prompt_tokens_per_second)
        out.counter("sglang:generation_tokens_total", lab, m.generation_tokens_per_second)
        out.histogram("sglang:e2e_request_latency_seconds", lab, m.latency, rps, SGLANG_LATENCY)
        if ttft := by_p95(m.ttft_p95):
            out.histogram("sglang:time_to_first_token_seconds", lab, ttft, rps, SGLANG_LATENCY)
        if itl := by_p95(m.itl_p95):
            tokens = m.generation_tokens_per_second or rps
            out.histogram("sglang:inter_token_latency_seconds", lab, itl, tokens, SGLANG_ITL)
