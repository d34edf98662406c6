"""The demo host's past, for charts that open full: its servers' loads are functions of the
epoch (serving.loads), so any moment of the last 24 h is computed as now is, without keeping
anything. Each figure is what the live scrape reads from that load: the planted histograms give
their quantiles back exactly, counters grow at their configured rate (see demo/loads.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from vramtop.demo.families.llamacpp import throughputs
from vramtop.demo.loads import GIB, ModelLoad
from vramtop.demo.serving import LLAMACPP_MODEL, family_loads, loads

MAX_POINTS = 240  # per series, as the Prometheus backfill (sources/promql.py)
HORIZON = 24 * 3600.0  # the furthest back the demo answers

# The demo host's NVML processes of each model (host.PROCESSES), for its VRAM.
_PIDS_GIB = {
    "llama-3.1-70b": (71.2, 71.2),
    "Qwen/Qwen2.5-7B-Instruct": (31.5,),
    LLAMACPP_MODEL: (5.4,),
    "yolov10n": (1.2,),
    "adaface_ir101": (2.1,),
    "bge-large-en-v1.5": (3.3,),
}
_FAMILY = {m.name: family for family, models in loads(0.0).items() for m in models}
_LATENCY = ("latency_p50_seconds", "latency_p95_seconds", "latency_p99_seconds")


def _serving(m: ModelLoad) -> dict[str, float | None]:
    """What a server with latency histograms and request counters reports."""
    return {
        "latency_p50_seconds": m.latency_p50,
        "latency_p95_seconds": m.latency_p95,
        "latency_p99_seconds": m.latency_p99,
        "requests_per_second": m.requests_per_second,
        "error_ratio": m.error_ratio,
        "queue_length": float(m.queue_length),
    }


def _llm(m: ModelLoad) -> dict[str, float | None]:
    return {
        **_serving(m),
        "kv_cache_usage_ratio": m.kv_cache_usage,
        "ttft_p95_seconds": m.ttft_p95,
        "inter_token_p95_seconds": m.itl_p95,
        "queue_time_p95_seconds": m.queue_time_p95,
        "prompt_tokens_per_second": m.prompt_tokens_per_second,
        "generation_tokens_per_second": m.generation_tokens_per_second,
        "running_requests": float(m.running),
        "preemptions_per_second": m.preemptions_per_second,
    }


def _llamacpp(m: ModelLoad) -> dict[str, float | None]:
    # No latency histogram, no request counter; tokens/s are the server's own gauges, which
    # its profile reads (vramtop/profiles/llamacpp.toml).
    prompt, generation = throughputs(m)
    return {
        "queue_length": float(m.queue_length),
        "kv_cache_usage_ratio": m.kv_cache_usage,
        "running_requests": float(m.running),
        "prompt_tokens_per_second": prompt,
        "generation_tokens_per_second": generation,
    }


FIGURES: dict[str, Callable[[ModelLoad], dict[str, float | None]]] = {
    "vllm": _llm,
    "sglang": _llm,
    "llamacpp": _llamacpp,
    "facesocial": _serving,
    "triton": _serving,
}


def vram_bytes(model: str, t: float) -> int | None:
    """As host.scenario_at sizes the model's processes at ``t``."""
    gibs = _PIDS_GIB.get(model)
    if gibs is None:
        return None
    wave = math.sin(t / 40.0)
    return sum(int(g * GIB * (1 + 0.01 * wave)) for g in gibs)


def history(model: str, window: float, end: float) -> dict[str, list[tuple[float, float]]]:
    """The demo host's figures for ``model`` over ``window`` seconds before ``end`` (at most
    24 h back), MAX_POINTS a series; {} for a model the demo host does not serve."""
    family = _FAMILY.get(model)
    if family is None:
        return {}
    window = min(window, HORIZON)
    step = max(1.0, window / MAX_POINTS)
    count = int(window // step)
    out: dict[str, list[tuple[float, float]]] = {}
    read = FIGURES[family]
    for k in range(count, -1, -1):
        t = end - k * step
        load = next(m for m in family_loads(family, t) if m.name == model)
        for key, value in read(load).items():
            if value is not None:
                out.setdefault(key, []).append((t, value))
        vram = vram_bytes(model, t)
        if vram is not None:
            out.setdefault("vram_bytes", []).append((t, float(vram)))
    return out
