"""Shared value formatting for the exports (and later the TUI): units, n/a, hostile text."""

from __future__ import annotations

import re
from datetime import UTC, datetime

NA = "n/a"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def literal(text: object) -> str:
    """Text from outside (command lines, labels) with control characters made visible, so an
    escape sequence in a process title cannot repaint the user's terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def gib(value: int | None) -> str:
    return NA if value is None else f"{value / 2**30:.1f} GiB"


def human_bytes(value: int | None) -> str:
    if value is None:
        return NA
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def pct(value: float | None, digits: int = 0) -> str:
    return NA if value is None else f"{value:.{digits}f}%"


def num(value: float | None, unit: str = "", digits: int = 0) -> str:
    return NA if value is None else f"{value:.{digits}f}{unit}"


def used_of(used: int | None, total: int | None) -> str:
    if used is None and total is None:
        return NA
    share = f" ({used / total:.0%})" if used is not None and total else ""
    return f"{gib(used).removesuffix(' GiB')} / {gib(total)}{share}"


def power(draw: float | None, limit: float | None) -> str:
    if draw is None and limit is None:
        return NA
    return f"{num(draw)} / {num(limit)} W"


def mig(mode: bool | None) -> str:
    return NA if mode is None else ("on" if mode else "off")


def shorten(text: str | None, width: int) -> str:
    if text is None:
        return NA
    text = literal(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def time_of_day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%SZ")


def seconds(value: float | None) -> str:
    """Latency the way people read it: 85 ms, 1.20 s."""
    if value is None:
        return NA
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
