"""The fleet: one row per host, worst first; Enter opens the host."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Footer

from vramtop import clean
from vramtop.export import fmt
from vramtop.fleet import HostRow
from vramtop.tui.messages import OpenHost
from vramtop.tui.palette import Palette
from vramtop.tui.screens.base import LiveScreen, set_title, table_title
from vramtop.tui.view import View
from vramtop.tui.widgets.filter_bar import FilterBar
from vramtop.tui.widgets.frame_table import FrameTable
from vramtop.tui.widgets.host_table import HostTable
from vramtop.tui.widgets.status_bar import StatusBar


class HostsScreen(LiveScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "back", "Back", show=False),
    ]
    FILTER_TABLE = "hosts"

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield HostTable(id="hosts")
        yield FilterBar("hosts", id="filter")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#hosts").focus()

    def draw(self, view: View) -> None:
        table = self.query_one("#hosts", HostTable)
        table.show(view)
        self._titles(table, view)

    def _titles(self, table: HostTable, view: View) -> None:
        p = view.palette
        rows = table.by_key.values()
        title = table_title("Hosts", table)
        down = sum(1 for r in rows if not r.up)
        firing = sum(1 for r in rows if r.alerts_firing)
        slow = sum(1 for r in rows if r.over_target)
        for n, what, style in (
            (down, "down", p.bad),
            (firing, "with alerts firing", p.bad),
            (slow, "past the p95 target", p.warn),
        ):
            if n:
                title.append(" · ")
                title.append(f"{n} {what}", style)
        set_title(table, title, row_note(table.row_of(table.selected_key), view))

    def on_frame_table_cursor_moved(self, event: FrameTable.CursorMoved) -> None:
        if isinstance(event.table, HostTable) and self.view is not None:
            self._titles(event.table, self.view)

    def on_frame_table_chosen(self, event: FrameTable.Chosen) -> None:
        if event.table.id == "hosts":
            self.post_message(OpenHost(event.key))


def row_note(r: HostRow | None, view: View) -> Text | None:
    """What the selected host's row cannot hold: why it is down, since when."""
    if r is None or (r.up and not r.detail):
        return None
    p = view.palette
    text = Text()
    text.append(clean.literal(r.instance), p.text)
    text.append(" up" if r.up else " DOWN", p.good if r.up else p.bad)
    if not r.up and r.last_seen is not None:
        text.append(f", last seen {fmt.time_of_day(r.last_seen)}", p.dim)
    if r.detail:
        text.append(": " + clean.literal(r.detail), p.text)
    return text


def host_line(r: HostRow | None, key: str, view: View) -> Text:
    """A host's screen's first line: its name, up or down and why, what it holds."""
    p: Palette = view.palette
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append("Host ", p.dim)
    out.append(clean.literal(key), p.accent)
    if r is None:
        out.append("  not in the latest frame", p.bad)
        return out
    out.append("  ")
    if r.up:
        out.append(" up ", p.good)
    else:
        out.append(" DOWN ", p.alarm)
        if r.last_seen is not None:
            out.append(f" last seen {fmt.time_of_day(r.last_seen)}", p.warn)
    if r.detail:
        out.append(": " + clean.literal(r.detail), p.text)
    out.append(f"  {r.gpu_count} GPU{'s' if r.gpu_count != 1 else ''}", p.dim)
    if r.models:
        out.append(f"  {len(r.models)} model{'s' if len(r.models) != 1 else ''}", p.dim)
    if r.alerts_firing:
        out.append(f"  {r.alerts_firing} firing", p.bad)
    return out
