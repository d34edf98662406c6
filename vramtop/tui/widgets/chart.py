"""A time chart of one or more series with an optional target line (see vramtop.tui.plot)."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from vramtop.tui.plot import BAND, ChartSpec, render_chart


class Chart(Widget):
    DEFAULT_CSS = "Chart { height: 7; }"

    def __init__(self, title: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.chart_title = title
        self._spec: ChartSpec | None = None
        self._cache: tuple[tuple[int, int], list[Text]] | None = None
        self.empty_note = "no data yet"

    def plot(self, spec: ChartSpec) -> None:
        if spec != self._spec:
            self._spec = spec
            self._cache = None
            self.border_title = self._legend(spec)
            self.refresh()

    @property
    def spec(self) -> ChartSpec | None:
        return self._spec

    @property
    def has_data(self) -> bool:
        return self._spec is not None and any(ln.points for ln in self._spec.lines)

    def _legend(self, spec: ChartSpec) -> Text:
        title = Text(self.chart_title)
        if len(spec.lines) > 1:
            for ln in spec.lines:
                title.append(" " + ln.label, ln.style)
        for band in spec.bands:
            title.append(" " + BAND + band.label, band.style)
        if spec.target is not None:
            title.append(" ┄" + spec.y_format(spec.target), spec.target_style)
        if spec.note:
            title.append("  " + spec.note, spec.axis)
        return title

    def render(self) -> Text:
        if self._spec is None:
            return Text(self.empty_note)
        width, height = self.content_size.width, self.content_size.height
        key = (width, height)
        if self._cache is None or self._cache[0] != key:
            rendered = render_chart(self._spec, width, height)
            if not self.has_data and rendered:
                middle = len(rendered) // 2
                msg = Text(self.empty_note.center(width)[:width], style=self._spec.axis)
                rendered[middle] = msg
            self._cache = (key, rendered)
        return Text("\n").join(self._cache[1])
