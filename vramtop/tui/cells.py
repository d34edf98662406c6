"""Cell text for tables and panels: units, thresholds, bars and sparklines as Rich ``Text``.

Text from outside (names, command lines, labels) always goes through :func:`lit`: a Rich
``Text`` built from ``clean.literal``, so markup like ``[bold]`` and escape sequences are shown,
never interpreted. Nothing here returns a markup string.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.style import Style
from rich.text import Text

from vramtop import clean
from vramtop.export import fmt
from vramtop.tui.palette import Palette

DASH = "–"
GIB = 2**30
LIT_MAX = 512  # characters of outside text kept for a cell or a panel line: no row is wider
_EIGHTHS = " ▏▎▍▌▋▊▉█"
_SPARK = " ▁▂▃▄▅▆▇█"


def lit(text: object, style: Style | str = "", justify: str = "left") -> Text:
    """Outside text, literally: control characters made visible, markup left as it is."""
    shown = clean.shorten(str(text), LIT_MAX)
    return Text(shown, style=style, no_wrap=True, overflow="ellipsis", justify=justify)  # type: ignore[arg-type]


def same(a: Text | None, b: Text | None) -> bool:
    """Equal as displayed: Rich's own ``==`` ignores the base style and justification."""
    if a is None or b is None:
        return a is b
    return (
        a.plain == b.plain and a.style == b.style and a.spans == b.spans and a.justify == b.justify
    )


def plain(text: str, style: Style | str = "", justify: str = "left") -> Text:
    return Text(text, style=style, no_wrap=True, overflow="ellipsis", justify=justify)  # type: ignore[arg-type]


def dash(p: Palette, justify: str = "right") -> Text:
    return plain(DASH, p.dim, justify)


# -- numbers ---------------------------------------------------------------------------------


def _odd(value: float | None, unit: str = "") -> str | None:
    """n/a for None, NaN and ±Inf; e-notation for a huge value; None for an ordinary one."""
    if value is None or not math.isfinite(value):
        return fmt.NA
    # 1e308s: narrow columns have no room for more, and no real figure is this large
    return f"{value:.0e}".replace("e+", "e") + unit if abs(value) >= fmt.HUGE else None


def seconds(value: float | None) -> str:
    if (odd := _odd(value, "s")) is not None:
        return odd
    if value < 0.001:
        return f"{value * 1e6:.0f}µs"
    if value < 0.01:
        return f"{value * 1000:.1f}ms"
    if value < 1:
        return f"{value * 1000:.0f}ms"
    if value < 100:
        return f"{value:.2f}s"
    return f"{value:.0f}s"


def rate(value: float | None) -> str:
    if (odd := _odd(value, "/s")) is not None:
        return odd
    if value >= 10_000:
        return f"{value / 1000:.0f}k/s"
    if value >= 1000:
        return f"{value / 1000:.1f}k/s"
    if value >= 10:
        return f"{value:.0f}/s"
    return f"{value:.1f}/s"


def percent_ratio(value: float | None) -> str:
    if (odd := _odd(None if value is None else value * 100, "%")) is not None:
        return odd
    if value == 0:
        return "0%"
    pct = value * 100
    if pct < 0.01:
        return "<0.01%"
    if pct < 10:
        return f"{pct:.2f}%"
    return f"{pct:.0f}%"


def count(value: float | None) -> str:
    if (odd := _odd(value)) is not None:
        return odd
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def gib(value: int | float | None) -> str:
    """Compact GiB for narrow columns: ``71.6G``; ``512M`` under 1 GiB."""
    if (odd := _odd(None if value is None else value / 2**40, "T")) is not None:
        return odd
    if value < 2**30:
        return f"{value / 2**20:.0f}M"
    g = value / 2**30
    if g >= 1024:
        return f"{g / 1024:.1f}T"
    return f"{g:.0f}G" if g >= 100 else f"{g:.1f}G"


def gib_axis(value: float) -> str:
    """An axis label for a value already in GiB."""
    return f"{value:.0f}G" if value >= 10 else f"{value:.1f}G"


def used_total(used: int | None, total: int | None) -> str:
    if used is None and total is None:
        return fmt.NA
    u = fmt.NA if used is None else fmt.fixed(used / 2**30, 1)
    t = fmt.NA if total is None else fmt.fixed(total / 2**30) + "G"
    return f"{u}/{t}"


def age(value: float | None) -> str:
    if (odd := _odd(value, "s")) is not None:
        return odd
    value = max(0.0, value)
    if value < 60:
        return f"{value:.0f}s"
    if value < 3600:
        return f"{value / 60:.0f}m"
    if value < 86400:
        return f"{value / 3600:.1f}h"
    return f"{value / 86400:.1f}d"


def interval(value: float) -> str:
    return f"{value:g}s"


# -- thresholds ------------------------------------------------------------------------------


def over(value: float | None, target: float | None, warn_at: float = 0.8) -> str | None:
    """Role for a value against a target: ``bad`` beyond it, ``warn`` near it."""
    if value is None or target is None:
        return None
    if value > target:
        return "bad"
    if target > 0 and value > target * warn_at:
        return "warn"
    return None


def vram_role(fraction: float | None, critical: float) -> str:
    if fraction is None:
        return "dim"
    if fraction >= critical:
        return "bad"
    if fraction >= critical - 0.15:
        return "warn"
    return "good"


def number(text: str, p: Palette, role: str | None = None, justify: str = "right") -> Text:
    if text == fmt.NA:
        return dash(p, justify)
    return plain(text, p.role(role), justify)


# -- bars and sparklines ---------------------------------------------------------------------


def bar(fraction: float | None, width: int, fill: Style, empty: Style) -> Text:
    """A horizontal bar in eighths of a cell; unknown is an empty track."""
    width = max(1, width)
    text = Text(no_wrap=True, overflow="crop")
    if fraction is None or not math.isfinite(fraction):
        text.append("·" * width, empty)
        return text
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    text.append("█" * full, fill)
    if full < width:
        text.append(_EIGHTHS[part] if part else "", fill)
        rest = width - full - (1 if part else 0)
        text.append("·" * rest, empty)
    return text


def spark(
    values: Sequence[float], width: int, style: Style, lo: float = 0.0, hi: float = 1.0
) -> Text:
    """The last ``width`` values as block heights between ``lo`` and ``hi``, right-aligned."""
    width = max(1, width)
    tail = values[-width:]
    span = (hi - lo) or 1.0
    chars = []
    for v in tail:
        level = (v - lo) / span if math.isfinite(v) else 0.0
        idx = 1 + round(max(0.0, min(1.0, level)) * 7)
        chars.append(_SPARK[idx])
    return Text(" " * (width - len(tail)) + "".join(chars), style=style, no_wrap=True)
