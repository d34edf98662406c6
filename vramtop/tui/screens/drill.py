"""Shared by the drill-downs: the chart window (1-4, w) and Esc back."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from vramtop.tui.screens.base import LiveScreen
from vramtop.tui.widgets.window_picker import WINDOWS, WindowPicker

WINDOW_BINDINGS: list[BindingType] = [
    Binding("w", "next_window", "Window"),
    *(
        Binding(str(i + 1), f"window({i})", f"Window {label}", show=False)
        for i, (label, _) in enumerate(WINDOWS)
    ),
]


class DrillScreen(LiveScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("slash", "filter", "Filter"),
        *WINDOW_BINDINGS,
    ]
    FILTER_TABLE = "procs"

    @property
    def picker(self) -> WindowPicker:
        return self.query_one(WindowPicker)

    def action_window(self, index: int) -> None:
        if 0 <= index < len(WINDOWS) and index != self.picker.index:
            self.picker.index = index
            self.picker.refresh(layout=True)
            self.window_changed()

    def action_next_window(self) -> None:
        self.action_window((self.picker.index + 1) % len(WINDOWS))

    def window_changed(self) -> None:
        if self.view is not None:
            self.draw(self.view)
