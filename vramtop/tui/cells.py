"""Cell text for tables and panels: units, thresholds, bars and sparklines as Rich ``Text``.

Text from outside (names, command lines, labels) always goes through :func:`lit`: a Rich
``Text`` built from ``clean.literal``, so markup like ``[bold]`` and escape sequences are shown,
never interpreted. Nothing here returns a markup string.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.style import Style
from rich.text import Text

from vramtop import clean, units
from vramtop.export import overview
from vramtop.tui.palette import Palette

DASH = "–"
GIB = units.GIB
LIT_MAX = 512  # characters of outside text kept for a cell or a panel line: no row is wider


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


def seconds(value: float | None) -> str:
    return units.seconds(value, units.COMPACT)


def gib(value: int | float | None) -> str:
    """Compact GiB for narrow columns: ``71.6G``; ``512M`` under 1 GiB."""
    return units.size(value, units.COMPACT)


def used_total(used: int | None, total: int | None) -> str:
    return units.used_of(used, total, units.COMPACT)


def power(draw: float | None, limit: float | None) -> str:
    return units.power(draw, limit, units.COMPACT)


rate = units.rate
pct = units.percent
percent_ratio = units.ratio
count = units.count
age = units.age
interval = units.interval
gib_axis = units.gib_axis


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
    if text == units.NA:
        return dash(p, justify)
    return plain(text, p.role(role), justify)


# -- bars and sparklines ---------------------------------------------------------------------


def bar(fraction: float | None, width: int, fill: Style, empty: Style) -> Text:
    """A horizontal bar in eighths of a cell; unknown is an empty track."""
    full, part, track = overview.bar_parts(fraction, width)
    text = Text(no_wrap=True, overflow="crop")
    text.append(full, fill)
    text.append(part, fill)
    text.append(track, empty)
    return text


def spark(
    values: Sequence[float], width: int, style: Style, lo: float = 0.0, hi: float = 1.0
) -> Text:
    """The last ``width`` values as block heights between ``lo`` and ``hi``, right-aligned."""
    return Text(overview.spark(values, width, lo, hi), style=style, no_wrap=True)
