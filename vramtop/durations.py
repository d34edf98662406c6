"""The one grammar for a length of time, such as ``2``, ``500ms``, ``1h30m`` or ``1 m``.

A duration is a bare number of seconds, or one or more number-and-unit terms whose values add
up. Which units a place accepts is a parameter: a refresh interval has no business being
``2h``, a recording span may be ``1.5d``. Each caller keeps its own bounds and messages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

SECONDS_PER = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
INTERVAL = ("ms", "s", "m")  # refresh intervals and timeouts
SPAN = ("ms", "s", "m", "h", "d")  # recordings and --at offsets
WINDOW = ("s", "m", "h")  # a PromQL range such as 2m

# One spelling of a number, so a long run of digits cannot make the pattern backtrack.
_NUMBER = r"(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_PATTERNS: dict[tuple[str, ...], tuple[re.Pattern[str], re.Pattern[str]]] = {}


def _patterns(units: Sequence[str]) -> tuple[re.Pattern[str], re.Pattern[str]]:
    key = tuple(units)
    if key not in _PATTERNS:
        unit = "|".join(sorted(key, key=len, reverse=True))  # ms before m
        whole = rf"\s*(?:{_NUMBER}\s*(?:{unit})\s*)+|\s*{_NUMBER}\s*"
        _PATTERNS[key] = (re.compile(whole), re.compile(rf"({_NUMBER})\s*({unit})?"))
    return _PATTERNS[key]


def parse(text: str | float | int, units: Sequence[str] = SPAN) -> float:
    """Seconds, finite and not negative; ValueError for anything else (a bool, ``inf``,
    ``2h`` where hours are not among ``units``, or 400 nines)."""
    if isinstance(text, bool):
        raise ValueError(text)
    if isinstance(text, int | float):
        try:
            value = float(text)
        except OverflowError:  # an int of 400 digits
            raise ValueError(text) from None
    elif isinstance(text, str):
        whole, term = _patterns(units)
        if not whole.fullmatch(text):
            raise ValueError(text)
        value = sum(float(n) * SECONDS_PER[u or "s"] for n, u in term.findall(text))
    else:
        raise ValueError(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)  # inf or a 300-digit number would overflow a sleep or a timer
    return value
