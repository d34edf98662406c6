"""A braille line chart as Rich ``Text`` lines: series over a time window, a target line.

Pure (Rich only): the Chart widget calls :func:`render_chart` with its size and data.
Each cell holds 2x4 dots; where series overlap the later one's colour wins. The target is a
dashed line of dots in its own style, drawn where no series is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from rich.style import Style
from rich.text import Text

from vramtop.history import Point

_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col]


@dataclass(frozen=True)
class Line:
    label: str
    points: Sequence[Point]
    style: Style


def nice_ceiling(value: float) -> float:
    """The next 1, 2, 2.5 or 5 times a power of ten at or above ``value``."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exp = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        candidate = step * 10**exp
        if candidate >= value * 0.999999:
            return candidate
    return 10.0 ** (exp + 1)


def _span_label(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"-{seconds / 3600:g}h"
    if seconds >= 60:
        return f"-{seconds / 60:g}m"
    return f"-{seconds:g}s"


@dataclass(frozen=True)
class ChartSpec:
    """What a chart shows: its series over [t0, t1], how y values read, and a target line.
    Frozen and comparable, so a widget repaints only when the spec changed."""

    lines: tuple[Line, ...]
    t0: float
    t1: float
    y_format: Callable[[float], str]
    axis: Style
    target: float | None = None
    target_style: Style | None = None
    note: str = ""  # after the legend, in the axis style
    y_floor: float = 0.0  # the y axis reaches at least this
    y_fixed: float | None = None  # a fixed y maximum (e.g. a GPU's total memory) when not exceeded


def render_chart(spec: ChartSpec, width: int, height: int) -> list[Text]:
    """``height`` lines of ``width`` cells: y labels, the plot and a time axis if room."""
    lines, t0, t1, axis = spec.lines, spec.t0, spec.t1, spec.axis
    y_format, target, target_style = spec.y_format, spec.target, spec.target_style
    y_floor, y_fixed = spec.y_floor, spec.y_fixed
    if width < 12 or height < 1:
        return [Text("…", style=axis)] * max(0, height)
    clean = [[(t, v) for t, v in ln.points if t0 <= t <= t1 and math.isfinite(v)] for ln in lines]
    values = [v for pts in clean for _, v in pts]
    if not values:
        return _empty(width, height, axis)
    top = max([*values, y_floor, target or 0.0])
    if y_fixed is not None and y_fixed > 0 and top <= y_fixed:
        y_max = y_fixed
    else:
        y_max = nice_ceiling(top * 1.05)
    with_axis = height >= 3
    rows = height - 1 if with_axis else height
    labels = {0: y_format(y_max), rows - 1: "0"}
    label_w = max(len(s) for s in labels.values())
    target_row = None
    if target is not None and target <= y_max:
        target_row = _row_of(target, y_max, rows)
        if 0 < target_row < rows - 1:  # the title names the target anyway
            labels[target_row] = y_format(target)
            label_w = max(label_w, len(labels[target_row]))
    cols = width - label_w - 1
    if cols < 4:
        return [Text("…", style=axis)] * height
    dots_x, dots_y = cols * 2, rows * 4
    bits = [[0] * cols for _ in range(rows)]
    owner: list[list[int]] = [[-1] * cols for _ in range(rows)]
    span = (t1 - t0) or 1.0

    def plot(x: int, y: int, which: int) -> None:
        if 0 <= x < dots_x and 0 <= y < dots_y:
            r, c = y // 4, x // 2
            bits[r][c] |= _BITS[y % 4][x % 2]
            owner[r][c] = which

    for which, pts in enumerate(clean):
        gap = _max_gap(pts, span / dots_x)
        prev: tuple[int, int, float] | None = None
        for t, v in pts:
            x = round((t - t0) / span * (dots_x - 1))
            y = dots_y - 1 - round(max(0.0, min(1.0, v / y_max)) * (dots_y - 1))
            if prev is not None and t - prev[2] <= gap:
                _segment(prev[0], prev[1], x, y, which, plot)
            else:
                plot(x, y, which)
            prev = (x, y, t)

    target_bits: dict[int, int] = {}
    if target_row is not None and target is not None:
        ty = dots_y - 1 - round(min(1.0, target / y_max) * (dots_y - 1))
        for x in range(dots_x):
            if x % 4 < 2:
                c = x // 2
                target_bits[c] = target_bits.get(c, 0) | _BITS[ty % 4][x % 2]

    out: list[Text] = []
    tstyle = target_style or axis
    for r in range(rows):
        text = Text(no_wrap=True, overflow="crop")
        label = labels.get(r, "")
        text.append(label.rjust(label_w), tstyle if r == target_row and label else axis)
        text.append("┤" if label else "│", axis)
        run, run_style = [], None
        for c in range(cols):
            if bits[r][c]:
                ch, st = chr(0x2800 + bits[r][c]), lines[owner[r][c]].style
            elif r == target_row and c in target_bits:
                ch, st = chr(0x2800 + target_bits[c]), tstyle
            else:
                ch, st = " ", axis
            if st is not run_style and run:
                text.append("".join(run), run_style)
                run = []
            run_style = st
            run.append(ch)
        if run:
            text.append("".join(run), run_style)
        out.append(text)
    if with_axis:
        left, right = _span_label(t1 - t0), "now"
        middle = _span_label((t1 - t0) / 2)
        axis_line = [" "] * cols
        _put(axis_line, 0, left)
        _put(axis_line, cols - len(right), right)
        if cols > len(left) + len(middle) + len(right) + 4:
            _put(axis_line, cols // 2 - len(middle) // 2, middle)
        out.append(Text(" " * (label_w + 1) + "".join(axis_line), style=axis, no_wrap=True))
    return out


def _empty(width: int, height: int, axis: Style) -> list[Text]:
    """No points in the window: blank lines; the Chart widget writes why in the middle."""
    return [Text(" " * width, style=axis) for _ in range(height)]


def _row_of(value: float, y_max: float, rows: int) -> int:
    dots_y = rows * 4
    y = dots_y - 1 - round(max(0.0, min(1.0, value / y_max)) * (dots_y - 1))
    return y // 4


def _put(cells: list[str], at: int, text: str) -> None:
    for i, ch in enumerate(text):
        if 0 <= at + i < len(cells):
            cells[at + i] = ch


def _max_gap(points: Sequence[Point], per_dot: float) -> float:
    """Points further apart than this are not joined: data is missing between them."""
    if len(points) < 2:
        return 0.0
    steps = sorted(b[0] - a[0] for a, b in pairwise(points))
    typical = steps[len(steps) // 2]
    return max(3 * typical, 2 * per_dot)


def _segment(x0: int, y0: int, x1: int, y1: int, which: int, plot: Callable) -> None:
    n = max(abs(x1 - x0), abs(y1 - y0), 1)
    for i in range(n + 1):
        plot(round(x0 + (x1 - x0) * i / n), round(y0 + (y1 - y0) * i / n), which)
