"""Text from outside (process titles, labels, error messages) made safe to show: one line, no
control or invisible characters, cut to a number of terminal columns. Nothing here knows a
source, a widget or an export format."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from vramtop.units import NA

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
    return _wide(text)


@lru_cache(maxsize=1024)  # a frame's bars, dashes and ellipses are the same few strings
def _wide(text: str) -> int:
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def shorten(text: str | None, columns: int) -> str:
    """Outside text made literal and cut to ``columns`` terminal columns, ending in ``…``."""
    if text is None:
        return NA
    return cut(literal(text[: columns * 4]), columns)  # a 10 MB label stays cheap


def cut(text: str, columns: int) -> str:
    """Text already literal, cut to ``columns`` terminal columns with ``…``."""
    if len(text) <= columns and width(text) <= columns:
        return text
    if text.isascii():  # a column per character: the loop below, without a call per character
        return text[: max(0, columns - 1)] + "…"
    out: list[str] = []
    used = 0
    for ch in text:
        used += width(ch)
        if used > columns - 1:
            break
        out.append(ch)
    return "".join(out) + "…"


def one_line(text: object, limit: int = 300) -> str:
    """Squash an error message from outside into one short printable line."""
    line = " ".join(str(text).split())
    line = "".join(ch if ch.isprintable() else "?" for ch in line)
    return line if len(line) <= limit else line[: limit - 1] + "…"
