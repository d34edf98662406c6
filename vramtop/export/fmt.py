"""Shared value formatting for the exports (and later the TUI): units, n/a, hostile text."""

from __future__ import annotations

import math
from datetime import UTC, datetime

NA = "n/a"
HUGE = 1e15  # beyond this a number is shown as 1.23e+20, never as all its digits


def fixed(value: float | None, digits: int = 0) -> str:
    """A number with ``digits`` decimals; n/a for None, NaN and ±Inf; huge ones in e-notation
    (1e308 must not print as 309 digits)."""
    if value is None or not math.isfinite(value):
        return NA
    if abs(value) >= HUGE:
        return f"{value:.3g}"
    return f"{value:.{digits}f}"


def gib(value: int | None) -> str:
    text = fixed(None if value is None else value / 2**30, 1)
    return text if text == NA else f"{text} GiB"


def human_bytes(value: int | None) -> str:
    if value is None:
        return NA
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(size) < 1024 or unit == "PiB":
            text = fixed(size, 0 if unit == "B" else 1)
            return text if text == NA else f"{text} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def pct(value: float | None, digits: int = 0) -> str:
    text = fixed(value, digits)
    return text if text == NA else f"{text}%"


def num(value: float | None, unit: str = "", digits: int = 0) -> str:
    text = fixed(value, digits)
    return text if text == NA else f"{text}{unit}"


def used_of(used: int | None, total: int | None) -> str:
    if used is None and total is None:
        return NA
    share = f" ({pct(used / total * 100)})" if used is not None and total else ""
    return f"{gib(used).removesuffix(' GiB')} / {gib(total)}{share}"


def power(draw: float | None, limit: float | None) -> str:
    if draw is None and limit is None:
        return NA
    return f"{num(draw)} / {num(limit)} W"


def mig(mode: bool | None) -> str:
    return NA if mode is None else ("on" if mode else "off")


def time_of_day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%SZ")


def seconds(value: float | None) -> str:
    """Latency the way people read it: 85 ms, 1.20 s."""
    if value is None or not math.isfinite(value):
        return NA
    return f"{fixed(value * 1000)} ms" if value < 1 else f"{fixed(value, 2)} s"
