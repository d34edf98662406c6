"""Shared value formatting for the exports (and later the TUI): units, n/a, hostile text."""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, datetime

NA = "n/a"
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f"
    # Unicode format characters (category Cf: bidi overrides and isolates, zero-width marks,
    # BOM, tags) and the line/paragraph separators: invisible, or they reorder a row.
    "\xad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e\u200b-\u200f"
    "\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f]"
)


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return (
        f"\\x{code:02x}"
        if code < 0x100 and code != 0xAD
        else (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    )


def literal(text: object) -> str:
    """Text from outside (command lines, labels) with control and invisible characters made
    visible, so an escape sequence in a process title cannot repaint the user's terminal and
    a right-to-left override cannot reorder a row."""
    return _CONTROL.sub(_escape, str(text))


def width(text: str) -> int:
    """Terminal columns: wide (East Asian) characters take two, combining marks none."""
    if text.isascii():
        return len(text)
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


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


def shorten(text: str | None, columns: int) -> str:
    """Outside text made literal and cut to ``columns`` terminal columns, ending in ``…``."""
    if text is None:
        return NA
    return cut(literal(text[: columns * 4]), columns)  # a 10 MB label stays cheap


def cut(text: str, columns: int) -> str:
    """Text already literal, cut to ``columns`` terminal columns with ``…``."""
    if len(text) <= columns and width(text) <= columns:
        return text
    out: list[str] = []
    used = 0
    for ch in text:
        used += width(ch)
        if used > columns - 1:
            break
        out.append(ch)
    return "".join(out) + "…"


def time_of_day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%SZ")


def seconds(value: float | None) -> str:
    """Latency the way people read it: 85 ms, 1.20 s."""
    if value is None or not math.isfinite(value):
        return NA
    return f"{fixed(value * 1000)} ms" if value < 1 else f"{fixed(value, 2)} s"
