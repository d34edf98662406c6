"""The serving figures an LLM server exports, beyond latency and request rates: one registry
that every panel and export reads (label, unit, how to format it, whether it is a mean).

A profile fills a figure as ``extras.<key>`` (vramtop/profiles/*.toml); ModelReading.extras
holds its value in the unit below, and ``unavailable[<key>]`` says why it is missing. A mean
stands in where a server exports no quantiles (Triton without its summaries): it is shown as
``~12ms``, never as a p50 or p95.
"""

from __future__ import annotations

from collections.abc import Mapping

from vramtop import units
from vramtop.records import record

# How a value is written: ratio (0..1 as %), seconds, per_second (events or tokens), count.
UNITS = ("ratio", "seconds", "per_second", "count")
MEAN_MARK = "~"
MEAN_LEGEND = "~ mean, the server exports no quantiles"


@record
class Figure:
    """A serving figure beyond latency, queue and rate (TTFT, KV cache...)."""

    key: str  # the extras key
    label: str  # in panels and exports: "TTFT p95"
    unit: str  # one of UNITS
    mean: bool = False  # a mean over the rate window, shown with MEAN_MARK
    stands_for: str = ""  # the ModelReading quantile a mean replaces where it is missing
    doc: str = ""  # one line for the schema and README

    @property
    def unit_name(self) -> str:
        return {"ratio": "ratio 0-1", "seconds": "s", "per_second": "1/s", "count": "count"}[
            self.unit
        ]


FIGURES: tuple[Figure, ...] = (
    Figure("kv_cache_usage_ratio", "KV cache", "ratio", doc="KV-cache blocks in use"),
    Figure("ttft_p50_seconds", "TTFT p50", "seconds", doc="time to first token, median"),
    Figure("ttft_p95_seconds", "TTFT p95", "seconds", doc="time to first token, 95th percentile"),
    Figure("inter_token_p50_seconds", "ITL p50", "seconds", doc="inter-token latency, median"),
    Figure(
        "inter_token_p95_seconds", "ITL p95", "seconds", doc="inter-token latency, 95th percentile"
    ),
    Figure(
        "latency_mean_seconds",
        "latency mean",
        "seconds",
        mean=True,
        stands_for="latency_p95_seconds",
        doc="mean request latency (servers without quantiles)",
    ),
    Figure("queue_time_p95_seconds", "queue p95", "seconds", doc="time waiting in the queue, p95"),
    Figure(
        "queue_time_mean_seconds",
        "queue mean",
        "seconds",
        mean=True,
        doc="mean time waiting in the queue (servers without quantiles)",
    ),
    Figure("prompt_tokens_per_second", "prompt tok/s", "per_second", doc="prompt tokens read"),
    Figure("generation_tokens_per_second", "gen tok/s", "per_second", doc="tokens generated"),
    Figure("running_requests", "running", "count", doc="requests being served now"),
    Figure("preemptions_per_second", "preempt/s", "per_second", doc="requests preempted"),
    Figure("prefix_cache_hit_ratio", "prefix hit", "ratio", doc="prefix-cache hits over queries"),
    Figure("timeouts_per_second", "timeouts/s", "per_second", doc="requests timed out"),
    Figure("fallbacks_per_second", "fallbacks/s", "per_second", doc="requests on a fallback"),
)
BY_KEY: dict[str, Figure] = {f.key: f for f in FIGURES}

# What the model drill-down charts and history keeps, beside ModelReading's own figures.
HISTORY_KEYS = (
    "kv_cache_usage_ratio",
    "ttft_p95_seconds",
    "inter_token_p95_seconds",
    "prompt_tokens_per_second",
    "generation_tokens_per_second",
)


# The Models table's columns, in order: what ``columns = [...]`` in the config may name.
MODEL_COLUMNS = (
    "name",
    "vram",
    "kv",
    "p50",
    "p95",
    "ttft",
    "itl",
    "p99",
    "tokens",
    "running",
    "rps",
    "err",
    "queue",
    "preempt",
    "gpus",
    "hosts",
    "via",
)


def label(key: str) -> str:
    f = BY_KEY.get(key)
    return f.label if f else key.replace("_", " ")


def fmt(key: str, value: float | None, compact: bool = False) -> str:
    """A figure with its unit (``42%``, ``312 ms``, ``~12 ms``, ``1.2k/s``); n/a when missing.
    A figure outside the registry (a user's profile) is a plain number."""
    if value is None:
        return units.NA
    f = BY_KEY.get(key)
    if f is None:
        return units.figure(value, 3)
    if f.unit == "ratio":  # 62.5 %: a KV cache's share is read against a threshold
        text = units.ratio(value) if compact else units.percent(value * 100, 1)
    elif f.unit == "seconds":  # under 10 ms the spaced form would round to "0 ms"
        text = units.seconds(value, units.COMPACT if compact or value < 0.01 else units.SPACED)
    elif f.unit == "per_second":
        text = units.rate(value)
    else:
        text = units.count(value)
    return MEAN_MARK + text if f.mean and text != units.NA else text


def stand_in(extras: Mapping[str, float], field: str) -> tuple[str, float] | None:
    """The mean that stands in for a missing quantile ``field`` (latency_p95_seconds), if the
    server exports one: (key, value)."""
    for f in FIGURES:
        if f.stands_for == field and f.key in extras:
            return f.key, extras[f.key]
    return None


def present(models: object) -> list[str]:
    """The registry keys any of these ModelReadings has, in registry order; then the others
    (a user's profile), sorted."""
    seen: set[str] = set()
    for m in models:  # type: ignore[attr-defined]
        seen.update(m.extras)
    return [f.key for f in FIGURES if f.key in seen] + sorted(seen - set(BY_KEY))
