"""A time chart of one or more series with an optional target line (see vramtop.tui.plot)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from vramtop.tui.plot import Line, render_chart


class Chart(Widget):
    DEFAULT_CSS = "Chart { height: 7; }"

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.chart_title = title
        self._data: tuple = ()
        self._cache: tuple[tuple, list[Text]] | None = None
        self.empty_note = "no data yet"

    def plot(
        self,
        lines: Sequence[Line],
        t0: float,
        t1: float,
        y_format: Callable[[float], str],
        axis: Style,
        target: float | None = None,
        target_style: Style | None = None,
        note: str = "",
        y_floor: float = 0.0,
        y_fixed: float | None = None,
    ) -> None:
        data = (
            tuple(lines),
            t0,
            t1,
            y_format,
            axis,
            target,
            target_style,
            note,
            y_floor,
            y_fixed,
        )
        if data != self._data:
            self._data = data
            self._cache = None
            self.border_title = self._legend()
            self.refresh()

    @property
    def has_data(self) -> bool:
        return bool(self._data) and any(ln.points for ln in self._data[0])

    def _legend(self) -> Text:
        lines, _, _, y_format, axis, target, target_style, note, _, _ = self._data
        title = Text(self.chart_title)
        if len(lines) > 1:
            for ln in lines:
                title.append(" " + ln.label, ln.style)
        if target is not None:
            title.append(" ┄" + y_format(target), target_style)
        if note:
            title.append("  " + note, axis)
        return title

    def render(self) -> Text:
        if not self._data:
            return Text(self.empty_note)
        width, height = self.content_size.width, self.content_size.height
        key = (width, height)
        if self._cache is None or self._cache[0] != key:
            lines, t0, t1, y_format, axis, target, target_style, _, y_floor, y_fixed = self._data
            rendered = render_chart(
                lines,
                width,
                height,
                t0,
                t1,
                y_format,
                axis,
                target,
                target_style,
                y_floor,
                y_fixed,
            )
            if not self.has_data and rendered:
                middle = len(rendered) // 2
                msg = Text(self.empty_note.center(width)[:width], style=axis)
                rendered[middle] = msg
            self._cache = (key, rendered)
        return Text("\n").join(self._cache[1])
