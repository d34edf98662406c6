"""llama.cpp's llama-server with --metrics: no labels at all (one model per server), counters
with _total, its own throughput averages as gauges."""

from __future__ import annotations

from vramtop.demo.families.out import Gpus, Models, Options, Out, at
from vramtop.demo.loads import ModelLoad

N_CTX = 32768  # the server's context, in tokens: the KV cache's size
PROMPT_SECONDS = 0.25  # a prompt's processing time


def throughputs(m: ModelLoad) -> tuple[float, float]:
    """The server's own throughput gauges, tokens/s: prompt processing, and one slot's
    generation."""
    prompt = m.prompt_tokens_per_second
    prompt_speed = prompt / (m.requests_per_second * PROMPT_SECONDS) if prompt else 0.0
    return prompt_speed, m.generation_tokens_per_second / max(m.running, 1)


def llamacpp(out: Out, models: Models, gpus: Gpus, o: Options) -> None:
    if len(models) > 1 and len({m.instance for m in models}) != len(models):
        raise ValueError("llama.cpp has no model label: several models need distinct instances")
    for m in models:
        lab = at({}, m.instance)
        prompt, predicted = m.prompt_tokens_per_second, m.generation_tokens_per_second
        kv = m.kv_cache_usage or 0.0
        busy = max(m.running, 1)  # slots decoding all the time
        out.counter("llamacpp:prompt_tokens_total", lab, prompt)
        out.counter("llamacpp:prompt_seconds_total", lab, m.requests_per_second * PROMPT_SECONDS)
        out.counter("llamacpp:tokens_predicted_total", lab, predicted)
        out.counter("llamacpp:tokens_predicted_seconds_total", lab, busy)
        out.counter("llamacpp:n_decode_total", lab, predicted / busy)
        out.gauge("llamacpp:n_busy_slots_per_decode", lab, m.running)
        prompt_speed, slot_speed = throughputs(m)
        out.gauge("llamacpp:prompt_tokens_seconds", lab, prompt_speed)
        out.gauge("llamacpp:predicted_tokens_seconds", lab, slot_speed)
        out.gauge("llamacpp:kv_cache_usage_ratio", lab, kv)
        out.gauge("llamacpp:kv_cache_tokens", lab, round(kv * N_CTX))
        out.gauge("llamacpp:requests_processing", lab, m.running)
        out.gauge("llamacpp:requests_deferred", lab, m.queue_length)
