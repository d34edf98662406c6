"""A widget that shows one Text and repaints only when the Text changed."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from vramtop.tui import cells


class TextPanel(Widget):
    DEFAULT_CSS = "TextPanel { height: auto; }"

    def __init__(self, text: Text, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = text

    def set_text(self, text: Text) -> None:
        if cells.same(text, self._text):
            return
        old, self._text = self._text, text
        # A layout pass (the whole screen's) only when the height may change: a figure that
        # changed within its line repaints this panel alone.
        width = self.size.width
        self.refresh(layout=not width or self._lines(old, width) != self._lines(text, width))

    def _lines(self, text: Text, width: int) -> int:
        return len(text.wrap(self.app.console, width))

    def render(self) -> Text:
        return self._text

    def get_content_height(self, container, viewport, width: int) -> int:  # type: ignore[no-untyped-def]
        return self._lines(self._text, max(1, width))
