"""A braille line chart as Rich ``Text`` lines: series over a time window, a target line.

Pure (Rich only): the Chart widget calls :func:`render_chart` with its size and data.
Each cell holds 2x4 dots; where series overlap the later one's colour wins. The target is a
dashed line of dots in its own style, drawn where no series is. Bands (throttling) tint the
plot's columns while they last; bands and marks (health events) also get a row of their own
under the plot, on the same time axis, so they read in every theme.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import pairwise

from rich.style import Style
from rich.text import Text

from vramtop.history import Point
from vramtop.records import record

_BITS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col]


@record(slots=False)
class Line:
    label: str
    points: Sequence[Point]
    style: Style


@record(slots=False)
class Band:
    """A condition over time: active where a point's value is above 0 (a bucket's mean of
    0/1 samples is the share of it spent so). Earlier bands win a column."""

    label: str
    points: Sequence[Point]
    style: Style
    tint: Style | None = None  # background over the plot's active columns


@record(slots=False)
class Mark:
    """A moment (a health event): ``▲`` at its time on the marker row, then its label."""

    time: float
    label: str
    style: Style


MARK = "▲"
BAND = "━"


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


@record(slots=False)
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
    bands: tuple[Band, ...] = ()
    marks: tuple[Mark, ...] = ()


def render_chart(spec: ChartSpec, width: int, height: int) -> list[Text]:
    """``height`` lines of ``width`` cells: y labels, the plot and a time axis if room."""
    lines, t0, t1, axis = spec.lines, spec.t0, spec.t1, spec.axis
    y_format, target, target_style = spec.y_format, spec.target, spec.target_style
    y_floor, y_fixed = spec.y_floor, spec.y_fixed
    if width < 12 or height < 1:
        return [Text("…", style=axis)] * max(0, height)
    clean = [[(t, v) for t, v in ln.points if t0 <= t <= t1 and math.isfinite(v)] for ln in lines]
    values = [v for pts in clean for _, v in pts]
    blank = not values  # no figures, but events and bands may still be shown on the time axis
    if blank and not (spec.marks or spec.bands):
        return _empty(width, height, axis)
    if blank:
        target = None
    top = max([*values, y_floor, target or 0.0])
    if y_fixed is not None and y_fixed > 0 and top <= y_fixed:
        y_max = y_fixed
    else:
        y_max = nice_ceiling(top * 1.05)
    with_axis = height >= 3
    rows = height - 1 if with_axis else height
    # Marks and bands get a row of their own where the plot keeps two rows, else they are
    # written over the time axis.
    marked = bool(spec.marks or spec.bands) and rows >= 3
    if marked:
        rows -= 1
    labels = {0: "", rows - 1: ""} if blank else {0: y_format(y_max), rows - 1: "0"}
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

    tints = _band_columns(spec, cols, dots_x) if spec.bands else {}
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
            if c in tints and (tint := spec.bands[tints[c]].tint) is not None:
                st = st + tint
            if st != run_style and run:
                text.append("".join(run), run_style)
                run = []
            run_style = st
            run.append(ch)
        if run:
            text.append("".join(run), run_style)
        out.append(text)
    marker = _marker_cells(spec, cols, dots_x, tints) if spec.marks or spec.bands else None
    if marked and marker is not None:
        prefix = Text(" " * label_w + "│", style=axis, no_wrap=True, overflow="crop")
        out.append(_marker_text(prefix, marker, "", axis))
    if with_axis:
        left, right = _span_label(t1 - t0), "now"
        middle = _span_label((t1 - t0) / 2)
        axis_line = [" "] * cols
        _put(axis_line, 0, left)
        _put(axis_line, cols - len(right), right)
        if cols > len(left) + len(middle) + len(right) + 4:
            _put(axis_line, cols // 2 - len(middle) // 2, middle)
        prefix = Text(" " * (label_w + 1), style=axis, no_wrap=True, overflow="crop")
        if marker is not None and not marked:
            out.append(_marker_text(prefix, marker, "".join(axis_line), axis))
        else:
            prefix.append("".join(axis_line))
            out.append(prefix)
    return out


def _column(t: float, t0: float, span: float, dots_x: int) -> int:
    return round((t - t0) / span * (dots_x - 1)) // 2


def _band_columns(spec: ChartSpec, cols: int, dots_x: int) -> dict[int, int]:
    """Column -> the first band active there. A point holds until the next one, unless the
    next is further than a gap away (data missing in between)."""
    t0, t1 = spec.t0, spec.t1
    span = (t1 - t0) or 1.0
    out: dict[int, int] = {}
    for which in reversed(range(len(spec.bands))):
        pts = [(t, v) for t, v in spec.bands[which].points if t0 <= t <= t1 and math.isfinite(v)]
        gap = _max_gap(pts, span / dots_x)
        for i, (t, v) in enumerate(pts):
            if v <= 0:
                continue
            first = _column(t, t0, span, dots_x)
            last = first
            if i + 1 < len(pts) and pts[i + 1][0] - t <= gap:
                last = max(first, _column(pts[i + 1][0], t0, span, dots_x) - 1)
            for c in range(max(0, first), min(cols - 1, last) + 1):
                out[c] = which
    return out


def _marker_cells(
    spec: ChartSpec, cols: int, dots_x: int, tints: dict[int, int]
) -> list[tuple[str, Style] | None]:
    """Per column what the marker row shows (None: nothing). Marks first, as ``▲`` and their
    label (after the mark, or before it at the right edge; a later mark never hides an
    earlier one), then bands as runs of ``━`` in the free cells, named at their start."""
    cells: list[tuple[str, Style] | None] = [None] * cols
    span = (spec.t1 - spec.t0) or 1.0
    for mark in sorted(spec.marks, key=lambda m: m.time):
        if not spec.t0 <= mark.time <= spec.t1:
            continue
        c = min(cols - 1, max(0, _column(mark.time, spec.t0, span, dots_x)))
        if cells[c] is not None:
            continue
        cells[c] = (MARK, mark.style)
        label = mark.label
        for where in (range(c + 1, c + 1 + len(label)), range(c - len(label), c)):
            if where.start >= 0 and where.stop <= cols and all(cells[i] is None for i in where):
                for i, ch in zip(where, label, strict=True):
                    cells[i] = (ch, mark.style)
                break
    runs: list[list[int]] = []  # [first column, last column, band]
    for c in sorted(tints):
        if runs and runs[-1][1] == c - 1 and runs[-1][2] == tints[c]:
            runs[-1][1] = c
        else:
            runs.append([c, c, tints[c]])
    for first, last, which in runs:
        band = spec.bands[which]
        free = [c for c in range(first, last + 1) if cells[c] is None]
        for c in free:
            cells[c] = (BAND, band.style)
        named = range(first, first + len(band.label))
        if last - first + 1 > len(band.label) and all(c in free for c in named):
            for c, ch in zip(named, band.label, strict=True):
                cells[c] = (ch, band.style)
    return cells


def _marker_text(
    prefix: Text, cells: list[tuple[str, Style] | None], under: str, axis: Style
) -> Text:
    """The marker cells over ``under`` (blank, or the time axis when there is no room for a
    row of their own)."""
    text = prefix
    for c, cell in enumerate(cells):
        ch, st = cell if cell is not None else (under[c] if c < len(under) else " ", axis)
        text.append(ch, st)
    return text


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
