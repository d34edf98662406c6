"""vLLM: requests, KV cache, preemptions, tokens and latency histograms (current and old names)."""

from __future__ import annotations

from vramtop.demo.families.out import Gpus, Models, Options, Out, at, by_p95

# The server's own default buckets, next to which the simulated quantile boundaries are placed.
VLLM_LATENCY = (0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960)
VLLM_TTFT = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10)
VLLM_ITL = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)


def vllm(out: Out, models: Models, gpus: Gpus, o: Options) -> None:
    kv = "vllm:gpu_cache_usage_perc" if o.legacy else "vllm:kv_cache_usage_perc"
    itl_name = "time_per_output_token_seconds" if o.legacy else "inter_token_latency_seconds"
    for m in models:
        lab = at({"model_name": m.name, "engine": "0"}, m.instance)
        rps, err = m.requests_per_second, m.error_ratio
        out.gauge("vllm:num_requests_running", lab, m.running)
        out.gauge("vllm:num_requests_waiting", lab, m.queue_length)
        out.gauge(kv, lab, m.kv_cache_usage or 0.0)
        finished = {"stop": 0.9 * (1 - err), "length": 0.1 * (1 - err), "abort": 0, "error": err}
        for reason, share in finished.items():
            out.counter(
                "vllm:request_success_total", {**lab, "finished_reason": reason}, rps * share
            )
        out.counter("vllm:num_preemptions_total", lab, m.preemptions_per_second or 0.0)
        out.counter("vllm:prompt_tokens_total", lab, m.prompt_tokens_per_second)
        out.counter("vllm:generation_tokens_total", lab, m.generation_tokens_per_second)
        if m.prefix_cache_hit_ratio is not None:  # counted in prompt tokens
            cache = "vllm:gpu_prefix_cache" if o.legacy else "vllm:prefix_cache"
            queries = m.prompt_tokens_per_second
            out.counter(f"{cache}_queries_total", lab, queries)
            out.counter(f"{cache}_hits_total", lab, queries * m.prefix_cache_hit_ratio)
        out.histogram("vllm:e2e_request_latency_seconds", lab, m.latency, rps, VLLM_LATENCY)
        if ttft := by_p95(m.ttft_p95):
            out.histogram("vllm:time_to_first_token_seconds", lab, ttft, rps, VLLM_TTFT)
        if itl := by_p95(m.itl_p95):
            tokens = m.generation_tokens_per_second or rps
            out.histogram(f"vllm:{itl_name}", lab, itl, tokens, VLLM_ITL)
        if queue := by_p95(m.queue_time_p95):
            out.histogram("vllm:request_queue_time_seconds", lab, queue, rps, VLLM_LATENCY)
