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
        if not cells.same(text, self._text):
            self._text = text
            self.refresh(layout=True)

    def render(self) -> Text:
        return self._text

    def get_content_height(self, container, viewport, width: int) -> int:  # type: ignore[no-untyped-def]
        return len(self._text.wrap(self.app.console, max(1, width)))
