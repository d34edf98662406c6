"""The FaceSocial backend: per-model histograms, queues and VRAM, HTTP handlers, GPU VRAM."""

from __future__ import annotations

from vramtop.demo.families.out import Gpus, Models, Options, Out, at

# The server's own default buckets, next to which the simulated quantile boundaries are placed.
PY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)


def facesocial(out: Out, models: Models, gpus: Gpus, o: Options) -> None:
    for m in models:
        lab, rps = at({"model": m.name}, m.instance), m.requests_per_second
        out.histogram("model_inference_duration_seconds", lab, m.latency, rps, PY_BUCKETS)
        out.gauge("model_queue_length", lab, m.queue_length)
        if m.vram_bytes is not None:
            out.gauge("model_memory_usage_bytes", lab, m.vram_bytes)
        out.counter("model_errors_total", lab, rps * m.error_ratio)
        out.counter("model_timeout_total", lab, rps * m.timeout_ratio)
        out.counter("model_fallback_total", lab, rps * m.fallback_ratio)
    for m in models:
        http, rps = (
            at({"method": "POST", "handler": f"/api/v1/{m.name}"}, m.instance),
            m.requests_per_second,
        )
        out.histogram("http_request_duration_seconds", http, m.latency, rps, PY_BUCKETS)
        for status, share in (("200", 1 - m.error_ratio), ("500", m.error_ratio)):
            out.counter("http_requests_total", {**http, "status": status}, rps * share)
    for g in gpus:
        lab = at({"gpu": str(g.index)}, g.instance)
        out.gauge("vram_allocated_bytes", lab, g.memory_used_bytes)
        out.gauge("vram_available_bytes", lab, g.memory_total_bytes - g.memory_used_bytes)
