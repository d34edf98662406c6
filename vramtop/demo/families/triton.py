"""Triton: counters without _total, cumulative microseconds, opt-in summaries, GPU gauges."""

from __future__ import annotations

from vramtop.demo.families.out import Gpus, Models, Options, Out, at, by_p95


def triton(out: Out, models: Models, gpus: Gpus, o: Options) -> None:
    for m in models:
        lab = at({"model": m.name, "version": m.version}, m.instance)
        ok = m.requests_per_second * (1 - m.error_ratio)
        queue = by_p95(m.queue_time_p95)
        queue_us = queue.mean * 1e6 if queue else 0.0
        compute_us = max(m.latency.mean * 1e6 - queue_us, 0.0)
        # Triton's counters carry no _total suffix; durations are cumulative microseconds of
        # successful requests.
        for name, per_request in (
            ("nv_inference_request_success", 1),
            ("nv_inference_count", 1),
            ("nv_inference_exec_count", 1),
            ("nv_inference_request_duration_us", m.latency.mean * 1e6),
            ("nv_inference_queue_duration_us", queue_us),
            ("nv_inference_compute_input_duration_us", compute_us * 0.05),
            ("nv_inference_compute_infer_duration_us", compute_us * 0.9),
            ("nv_inference_compute_output_duration_us", compute_us * 0.05),
        ):
            out.counter(name, lab, ok * per_request)
        for reason in ("REJECTED", "CANCELED", "BACKEND", "OTHER"):
            failed = m.requests_per_second * m.error_ratio if reason == "BACKEND" else 0.0
            out.counter("nv_inference_request_failure", {**lab, "reason": reason}, failed)
        out.gauge("nv_inference_pending_request_count", lab, m.queue_length)
        if o.triton_summaries:
            out.summary_us("nv_inference_request_summary_us", lab, m.latency, ok)
            if queue:
                out.summary_us("nv_inference_queue_summary_us", lab, queue, ok)
    for g in gpus:
        lab = at({"gpu_uuid": g.gpu_uuid}, g.instance)
        out.gauge("nv_gpu_utilization", lab, g.utilization)
        out.gauge("nv_gpu_memory_total_bytes", lab, g.memory_total_bytes)
        out.gauge("nv_gpu_memory_used_bytes", lab, g.memory_used_bytes)
        out.gauge("nv_gpu_power_usage", lab, g.power_watts)
