"""Numbers with their units, each quantity formatted once, in two renderings.

SPACED is for exports and detail panels (``85 ms``, ``1.20 s``, ``12.5 GiB``); COMPACT is for
table cells (``85ms``, ``1.20s``, ``12.5G``, ``6.3/s``). Both say ``n/a`` for a missing, NaN or
infinite value (a cell shows it as a dash) and never print a figure of 16 digits or more:
SPACED writes the figure it reached as ``1e+23 ms``, COMPACT writes the value in the
quantity's own unit as ``1e20s`` (narrow columns have no room for more).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from vramtop.records import record

NA = "n/a"
HUGE = 1e15  # beyond this a number is shown in e-notation, never as all its digits
INF = math.inf


@record(slots=False)
class Style:
    """How a figure is written: SPACED for exports and panels, COMPACT for table cells."""

    sep: str  # between a figure and its unit
    huge_in_base: bool  # a huge value is shown in the quantity's own unit, not the ladder's


SPACED = Style(" ", huge_in_base=False)
COMPACT = Style("", huge_in_base=True)


class Step(NamedTuple):
    """One rung of a ladder: values under ``below`` are shown as ``value * mul / div`` with
    ``digits`` decimals and ``unit``. Multiplying and dividing by exact integers keeps every
    figure the same float the old formatters printed."""

    below: float
    mul: int
    div: int
    digits: int
    unit: str


def figure(value: float | None, digits: int = 0, style: Style = SPACED) -> str:
    """A number with ``digits`` decimals; n/a for None, NaN and ±Inf; e-notation when huge
    (1e308 must not print as 309 digits)."""
    if value is None or not math.isfinite(value):
        return NA
    if abs(value) >= HUGE:
        return f"{value:.3g}" if style is SPACED else f"{value:.0e}".replace("e+", "e")
    return f"{value:.{digits}f}"


def _odd(value: float | None, style: Style, base: Step | None) -> str | None:
    """n/a, or a huge value in its base unit (COMPACT); None for an ordinary value."""
    if value is None or not math.isfinite(value):
        return NA
    if style.huge_in_base and base is not None:
        scaled = value * base.mul / base.div
        if abs(scaled) >= HUGE:
            return figure(scaled, 0, style) + base.unit
    return None


def _climb(value: float, ladder: tuple[Step, ...], style: Style, by_size: bool = False) -> str:
    key = abs(value) if by_size else value
    step = next(s for s in ladder if key < s.below)
    return f"{figure(value * step.mul / step.div, step.digits, style)}{style.sep}{step.unit}"


def _ladder(
    value: float | None, ladders: dict[Style, tuple[Step, ...]], style: Style, base: Step
) -> str:
    if (odd := _odd(value, style, base)) is not None:
        return odd
    assert value is not None
    return _climb(value, ladders[style], style)


# -- time ------------------------------------------------------------------------------------

_S = Step(INF, 1, 1, 0, "s")
_SECONDS = {
    SPACED: (Step(1, 1000, 1, 0, "ms"), Step(INF, 1, 1, 2, "s")),
    COMPACT: (
        Step(0.001, 10**6, 1, 0, "µs"),
        Step(0.01, 1000, 1, 1, "ms"),
        Step(1, 1000, 1, 0, "ms"),
        Step(100, 1, 1, 2, "s"),
        Step(INF, 1, 1, 0, "s"),
    ),
}
_AGE = (
    Step(60, 1, 1, 0, "s"),
    Step(3600, 1, 60, 0, "m"),
    Step(86400, 1, 3600, 1, "h"),
    Step(INF, 1, 86400, 1, "d"),
)


def seconds(value: float | None, style: Style = SPACED) -> str:
    """Latency the way people read it: ``85 ms``, ``1.20 s``; compact ``850µs``, ``2.5ms``."""
    return _ladder(value, _SECONDS, style, _S)


def age(value: float | None) -> str:
    """How long ago, compact: ``42s``, ``5m``, ``1.5h``, ``2.0d``; never negative."""
    if (odd := _odd(value, COMPACT, _S)) is not None:
        return odd
    assert value is not None
    return _climb(max(0.0, value), _AGE, COMPACT)


def interval(value: float) -> str:
    """A refresh interval as the user would type it: ``2s``, ``0.5s``."""
    return f"{value:g}s"


# -- bytes -----------------------------------------------------------------------------------

GIB = 2**30
_T = Step(INF, 1, 2**40, 1, "T")
_BYTES = {
    SPACED: tuple(
        Step(INF if unit == "PiB" else 1024 ** (k + 1), 1, 1024**k, 0 if k == 0 else 1, unit)
        for k, unit in enumerate(("B", "KiB", "MiB", "GiB", "TiB", "PiB"))
    ),
    COMPACT: (
        Step(2**30, 1, 2**20, 0, "M"),
        Step(100 * 2**30, 1, 2**30, 1, "G"),
        Step(2**40, 1, 2**30, 0, "G"),
        _T,
    ),
}


def size(value: int | float | None, style: Style = SPACED) -> str:
    """Bytes in the unit that fits: ``512 B``, ``12.5 GiB``; compact ``512M``, ``71.6G``."""
    if value is None:
        return NA
    if style is COMPACT:
        return _ladder(value, _BYTES, style, _T)
    return NA if not math.isfinite(value) else _climb(value, _BYTES[style], style, by_size=True)


def gib(value: int | None) -> str:
    """Bytes as GiB whatever the size, spaced: ``12.5 GiB``."""
    text = figure(None if value is None else value / GIB, 1)
    return text if text == NA else f"{text} GiB"


def gib_axis(value: float) -> str:
    """An axis label for a value already in GiB, compact."""
    return f"{value:.0f}G" if value >= 10 else f"{value:.1f}G"


def used_of(used: int | None, total: int | None, style: Style = SPACED) -> str:
    """Memory in use of a total: ``12.5 / 80.0 GiB (16%)``; compact ``12.5/80G``."""
    if used is None and total is None:
        return NA
    if style is COMPACT:
        u = NA if used is None else figure(used / GIB, 1)
        t = NA if total is None else figure(total / GIB) + "G"
        return f"{u}/{t}"
    share = f" ({percent(used / total * 100)})" if used is not None and total else ""
    return f"{gib(used).removesuffix(' GiB')} / {gib(total)}{share}"


# -- rates, shares, counts, readings ---------------------------------------------------------

_PER_S = Step(INF, 1, 1, 0, "/s")
_RATE = {
    COMPACT: (
        Step(10, 1, 1, 1, "/s"),
        Step(1000, 1, 1, 0, "/s"),
        Step(10_000, 1, 1000, 1, "k/s"),
        Step(INF, 1, 1000, 0, "k/s"),
    )
}
_PCT = Step(INF, 1, 1, 0, "%")
_SHARE = {COMPACT: (Step(10, 1, 1, 2, "%"), Step(INF, 1, 1, 0, "%"))}


def rate(value: float | None) -> str:
    """Events per second, compact: ``6.3/s``, ``42/s``, ``1.2k/s``."""
    return _ladder(value, _RATE, COMPACT, _PER_S)


def percent(value: float | None, digits: int = 0) -> str:
    """A value already in percent: ``42%``, ``0.10%`` with ``digits=2``."""
    text = figure(value, digits)
    return text if text == NA else f"{text}%"


def ratio(value: float | None) -> str:
    """A ratio (0.25) as a percent, compact: ``25%``, ``2.50%``, ``<0.01%``, ``0%``."""
    pct = None if value is None else value * 100
    if (odd := _odd(pct, COMPACT, _PCT)) is not None:
        return odd
    assert value is not None and pct is not None
    if value == 0:
        return "0%"
    if pct < 0.01:
        return "<0.01%"
    return _climb(pct, _SHARE[COMPACT], COMPACT)


def count(value: float | None) -> str:
    """A count, compact: whole numbers as they are, ``2.5`` below ten."""
    if (odd := _odd(value, COMPACT, Step(INF, 1, 1, 0, ""))) is not None:
        return odd
    assert value is not None
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def number(value: float | None, unit: str = "", digits: int = 0) -> str:
    """Any reading with its unit written after it as given: ``71°C``, ``71 C``."""
    text = figure(value, digits)
    return text if text == NA else f"{text}{unit}"


def power(draw: float | None, limit: float | None, style: Style = SPACED) -> str:
    """Watts drawn of the limit: ``250 / 300 W``; compact ``250/300W``, ``250W`` without one."""
    if style is COMPACT:
        if draw is None:
            return NA
        return f"{figure(draw)}W" if limit is None else f"{figure(draw)}/{figure(limit)}W"
    if draw is None and limit is None:
        return NA
    return f"{number(draw)} / {number(limit)} W"
