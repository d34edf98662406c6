"""The overview's rows as plain cell text, in the live view's order: what the first paint
(vramtop.export.screen) draws before Textual is imported. Keys are vramtop.export.columns'."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from vramtop import clean, health, serving, units
from vramtop.model import AlertReading, Frame, GpuReading, ModelReading, ProcessReading

DASH = "–"
LIT_MAX = 512  # characters of outside text kept for a cell: no row is wider
_EIGHTHS = " ▏▎▍▌▋▊▉█"
_SPARK = " ▁▂▃▄▅▆▇█"
SEVERITY_RANK = {"critical": 0, "page": 0, "error": 1, "warning": 2, "warn": 2, "info": 3}
# Where an alert came from, short enough for a column; "local" is a vramtop rule.
SOURCE_WORDS = {"prometheus": "prom", "alertmanager": "am", "prometheus+alertmanager": "p+am"}

Row = dict[str, str]


def lit(text: object) -> str:
    return clean.shorten(str(text), LIT_MAX)


def num(text: str) -> str:
    """A figure, or the dash that stands for one not known."""
    return DASH if text == units.NA else text


def short_name(name: str | None) -> str:
    if not name:
        return units.NA
    return name.removeprefix("NVIDIA ").removeprefix("Tesla ")


def bar_parts(fraction: float | None, width: int) -> tuple[str, str, str]:
    """A horizontal bar in eighths of a cell: (full cells, the partial one, the empty track)."""
    width = max(1, width)
    if fraction is None or not math.isfinite(fraction):
        return "", "", "·" * width
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    if full >= width:
        return "█" * full, "", ""
    rest = width - full - (1 if part else 0)
    return "█" * full, _EIGHTHS[part] if part else "", "·" * rest


def spark(values: Sequence[float], width: int, lo: float = 0.0, hi: float = 1.0) -> str:
    """The last ``width`` values as block heights between ``lo`` and ``hi``, right-aligned."""
    width = max(1, width)
    tail = values[-width:]
    span = (hi - lo) or 1.0
    chars = []
    for v in tail:
        level = (v - lo) / span if math.isfinite(v) else 0.0
        chars.append(_SPARK[1 + round(max(0.0, min(1.0, level)) * 7)])
    return " " * (width - len(tail)) + "".join(chars)


def ordered(rows: list[Any], value: Callable[[Any], Any], reverse: bool) -> list[Any]:
    """The live tables' sort: by ``value``, unknown (None) last either way, stable."""
    out = sorted(rows, key=lambda r: (1, 0) if value(r) is None else (0, value(r)), reverse=reverse)
    if reverse:
        out.sort(key=lambda r: value(r) is None)
    return out


# -- GPUs --------------------------------------------------------------------------------------


def gpu_row(g: GpuReading, frame: Frame, bar_w: int, spark_w: int, recent: Sequence[float]) -> Row:
    """``recent``: the GPU's last VRAM readings as fractions of its memory (the sparkline)."""
    share = g.memory_fraction
    row = {
        "index": str(g.index),
        "host": lit(g.host) if g.host else DASH,
        "name": lit(short_name(g.name)),
        "health": lit(health.finding(g, frame.events, frame.time)[0]),
    }
    if g.state != "ok":
        row["bar"] = " LOST  " + clean.literal(g.unavailable.get("state", "GPU lost"))
        return row | dict.fromkeys(("used", "share", "util", "temp", "power", "procs"), DASH)
    return row | {
        "bar": "".join(bar_parts(share, bar_w)),
        "used": num(units.used_of(g.memory_used_bytes, g.memory_total_bytes, units.COMPACT)),
        "share": num(units.percent(None if share is None else share * 100)),
        "util": num(units.percent(g.utilization_percent)),
        "temp": num(units.number(g.temperature_c, "°C")),
        "power": num(units.power(g.power_watts, g.power_limit_watts, units.COMPACT)),
        "procs": str(len(g.processes)),
        "spark": spark(recent, spark_w) if g.memory_total_bytes else " " * spark_w,
    }


# -- models ------------------------------------------------------------------------------------


def per_s(value: float | None) -> str:
    return units.rate(value).removesuffix("/s")


def p95_of(m: ModelReading) -> tuple[float | None, str]:
    """The p95 and its cell; a server's mean stands in (``~``) where it exports no quantile."""
    p95, text = m.latency_p95_seconds, units.seconds(m.latency_p95_seconds, units.COMPACT)
    if p95 is None and (mean := serving.stand_in(m.extras, "latency_p95_seconds")):
        p95, text = mean[1], serving.fmt(mean[0], mean[1], compact=True)
    return p95, text


def model_row(m: ModelReading) -> Row:
    x = m.extras
    kv = x.get("kv_cache_usage_ratio")

    def secs(v: float | None) -> str:
        return num(units.seconds(v, units.COMPACT))

    return {
        "name": lit(m.name),
        "vram": num(units.size(m.vram_bytes, units.COMPACT)),
        "kv": num(units.percent(None if kv is None else kv * 100)),
        "p50": secs(m.latency_p50_seconds),
        "p95": num(p95_of(m)[1]),
        "ttft": secs(x.get("ttft_p95_seconds")),
        "itl": secs(x.get("inter_token_p95_seconds")),
        "p99": secs(m.latency_p99_seconds),
        "tokens": num(per_s(x.get("generation_tokens_per_second"))),
        "running": num(units.count(x.get("running_requests"))),
        "rps": num(units.rate(m.requests_per_second)),
        "err": num(units.ratio(m.error_ratio)),
        "queue": num(units.count(m.queue_length)),
        "preempt": num(per_s(x.get("preemptions_per_second"))),
        "gpus": ",".join(str(i) for i in m.gpus) or DASH,
        "hosts": lit(", ".join(m.instances)) if m.instances else DASH,
        "via": ", ".join(m.sources) or m.profile or DASH,
    }


# -- processes ---------------------------------------------------------------------------------


def process_row(p: ProcessReading, age: float | None) -> Row:
    if p.command:
        command = lit(p.command) + (" (" + p.detail + ")" if p.detail else "")
    else:
        command = lit(p.detail or p.name or "n/a")
    return {
        "pid": str(p.pid),
        "gpu": str(p.gpu_index),
        "user": lit(p.user) if p.user else DASH,
        "vram": num(units.size(p.used_memory_bytes, units.COMPACT)),
        "sm": num(units.percent(p.sm_percent)),
        "mem": num(units.percent(p.memory_controller_percent)),
        "cpu": num(units.percent(p.cpu_percent)),
        "rss": num(units.size(p.rss_bytes, units.COMPACT)),
        "age": num(units.age(age)),
        "model": lit(p.model) if p.model else DASH,
        "command": command,
    }


def process_age(p: ProcessReading, now: float) -> float | None:
    return None if p.started_at is None else max(0.0, now - p.started_at)


# -- alerts ------------------------------------------------------------------------------------


def alert_rank(a: AlertReading, now: float) -> tuple[int, int, int, float]:
    state = 0 if a.state == "firing" else 1
    age = now - a.active_since if a.active_since else 0.0
    return (int(a.silenced), state, SEVERITY_RANK.get(a.severity.lower(), 4), -age)


def alert_row(a: AlertReading, now: float) -> Row:
    if a.silenced:
        state = "silenced"
    elif a.state == "firing":
        state = "FIRING"
    else:
        state = a.state or "pending"
    age = now - a.active_since if a.active_since else None
    return {
        "state": state,
        "severity": lit(a.severity),
        "age": units.age(age) if age is not None else DASH,
        "name": lit(a.name),
        "source": lit(SOURCE_WORDS.get(a.source, a.source)),
        "summary": lit(a.summary or DASH),
    }
