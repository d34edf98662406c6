"""Which time window the drill-down charts cover: 5m, 1h, 6h or 24h (keys 1-4, w cycles)."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from vramtop.tui.palette import Palette

WINDOWS: tuple[tuple[str, float], ...] = (
    ("5m", 300.0),
    ("1h", 3600.0),
    ("6h", 21600.0),
    ("24h", 86400.0),
)


class WindowPicker(Widget):
    DEFAULT_CSS = "WindowPicker { height: 1; width: auto; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.index = 0
        self.note = ""
        self._palette: Palette | None = None

    @property
    def seconds(self) -> float:
        return WINDOWS[self.index][1]

    @property
    def label(self) -> str:
        return WINDOWS[self.index][0]

    def show(self, palette: Palette, note: str = "") -> None:
        if palette is not self._palette or note != self.note:
            self._palette, self.note = palette, note
            self.refresh(layout=True)

    def render(self) -> Text:
        p = self._palette
        out = Text(no_wrap=True)
        out.append("window ", p.dim if p else "")
        for i, (label, _) in enumerate(WINDOWS):
            style = (p.badge if i == self.index else p.dim) if p else ""
            out.append(f" {i + 1}:{label} ", style)
        if self.note:
            out.append("  " + self.note, p.dim if p else "")
        return out

    def get_content_width(self, container, viewport) -> int:  # type: ignore[no-untyped-def]
        return len(self.render())
