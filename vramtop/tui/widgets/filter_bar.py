"""The ``/`` filter line: typing filters the list live, Enter keeps it, Esc clears it."""

from __future__ import annotations

from textual.widgets import Input


class FilterBar(Input):
    DEFAULT_CSS = "FilterBar { display: none; }"

    def __init__(self, noun: str, *, id: str | None = None) -> None:
        super().__init__(placeholder=f"filter {noun}… (Enter keeps it, Esc clears it)", id=id)
        self.noun = noun

    def open(self, blink: bool = True) -> None:
        self.cursor_blink = blink
        self.display = True
        self.focus()

    def close(self) -> None:
        self.display = False
