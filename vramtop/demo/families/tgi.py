"""text-generation-inference: no model label, counters without _total by default."""

from __future__ import annotations

from vramtop.demo.families.out import Gpus, Models, Options, Out, at, by_p95

# The server's own default buckets, next to which the simulated quantile boundaries are placed.
TGI_BUCKETS = tuple(0.0001 * 1.5**k for k in range(1, 36))  # TGI router: 35 x1.5 from 0.00015


def tgi(out: Out, models: Models, gpus: Gpus, o: Options) -> None:
    instances = [m.instance for m in models]
    if len(models) > 1 and (None in instances or len(set(instances)) != len(instances)):
        raise ValueError("TGI has no model label: several models need distinct instances")
    sfx = o.counter_suffix
    for m in models:
        lab, rps, err = at({}, m.instance), m.requests_per_second, m.error_ratio
        out.counter(f"tgi_request_count{sfx}", lab, rps)
        out.counter(f"tgi_request_success{sfx}", lab, rps * (1 - err))
        out.counter(f"tgi_request_failure{sfx}", {**lab, "err": "generation"}, rps * err)
        out.gauge("tgi_queue_size", lab, m.queue_length)
        out.gauge("tgi_batch_current_size", lab, m.running)
        out.histogram("tgi_request_duration", lab, m.latency, rps, TGI_BUCKETS)
        if queue := by_p95(m.queue_time_p95):
            out.histogram("tgi_request_queue_duration", lab, queue, rps, TGI_BUCKETS)
        if itl := by_p95(m.itl_p95):
            name = "tgi_request_mean_time_per_token_duration"
            out.histogram(name, lab, itl, rps, TGI_BUCKETS)
