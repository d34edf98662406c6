"""One fleet host: the overview drawing the Frame scoped to it, under a line that says
whether it is up. Its GPU and model drill-downs are scoped to it too."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult

from vramtop.tui.screens.hosts import host_line
from vramtop.tui.screens.overview import OverviewScreen
from vramtop.tui.view import View
from vramtop.tui.widgets.text_panel import TextPanel


class HostScreen(OverviewScreen):
    def __init__(self, key: str) -> None:
        super().__init__()
        self.host = key

    def header(self) -> ComposeResult:
        yield TextPanel(Text("Host " + self.host), id="host-line")

    def draw(self, view: View) -> None:
        key = self.host or ""
        row = next((r for r in view.host_rows() if r.instance == key), None)
        self.query_one("#host-line", TextPanel).set_text(host_line(row, key, view))
        super().draw(view)
