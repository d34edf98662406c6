"""What every live screen shares: the status line, the view it was last given, the filter."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

from vramtop.tui.messages import RedrawWanted
from vramtop.tui.view import View
from vramtop.tui.widgets.alert_table import AlertTable
from vramtop.tui.widgets.filter_bar import FilterBar
from vramtop.tui.widgets.frame_table import FrameTable
from vramtop.tui.widgets.status_bar import Status, StatusBar


def set_title(widget: Widget, title: Text | str, subtitle: Text | str | None = None) -> None:
    """Border titles only when they change (setting one repaints the widget)."""
    title = title if isinstance(title, Text) else Text(title)
    if getattr(widget, "_vt_title", None) != title:
        widget._vt_title = title  # type: ignore[attr-defined]
        widget.border_title = title
    sub = subtitle if isinstance(subtitle, Text) or subtitle is None else Text(subtitle)
    if getattr(widget, "_vt_subtitle", None) != sub:
        widget._vt_subtitle = sub  # type: ignore[attr-defined]
        widget.border_subtitle = sub


def table_title(name: str, table: FrameTable) -> Text:
    shown, total = len(table.keys), table.total
    text = Text(f"{name} ({total})" if shown == total else f"{name} ({shown} of {total})")
    text.append(f" · sort {table.sort_label}")
    if table.filter_text:
        text.append(" · filter ")
        text.append(repr(table.filter_text))
    return text


class LiveScreen(Screen[None]):
    """A screen that draws Views handed to it by the app; it fetches nothing itself."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "back", "Back"),
    ]
    FILTER_TABLE: ClassVar[str] = ""  # id of the table that / filters

    view: View | None = None
    host: str | None = None  # a fleet host: every View is scoped to it before drawing

    def show_view(self, view: View) -> None:
        if self.host is not None and view.host != self.host:
            view = view.scoped(self.host)
        self.view = view
        self.draw(view)

    def draw(self, view: View) -> None:
        raise NotImplementedError

    def show_status(self, status: Status) -> None:
        for bar in self.query(StatusBar):
            bar.show(status)

    def on_screen_resume(self) -> None:
        self.post_message(RedrawWanted(self))

    # -- filter ----------------------------------------------------------------------------

    def filter_table(self) -> FrameTable | None:
        if not self.FILTER_TABLE:
            return None
        return self.query_one(f"#{self.FILTER_TABLE}", FrameTable)

    def action_filter(self) -> None:
        bar = self.query_one(FilterBar)
        table = self.filter_table()
        if table is not None:
            bar.value = table.filter_text
        bar.open(blink=getattr(self.app, "cursor_blink", True))

    def on_input_changed(self, event: Input.Changed) -> None:
        table = self.filter_table()
        if table is not None and isinstance(event.input, FilterBar):
            table.set_filter(event.value)
            self.refresh_titles()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if isinstance(event.input, FilterBar):
            event.input.close()
            table = self.filter_table()
            if table is not None:
                table.focus()

    def clear_filter(self) -> bool:
        """Clears an open or active filter; False if there was none."""
        bar = self.query_one(FilterBar)
        table = self.filter_table()
        active = table is not None and bool(table.filter_text)
        if not bar.display and not active:
            return False
        bar.value = ""
        bar.close()
        if table is not None:
            table.set_filter("")
            table.focus()
        self.refresh_titles()
        return True

    def refresh_titles(self) -> None:
        if self.view is not None:
            self.draw(self.view)

    def action_back(self) -> None:
        if self.clear_filter():
            return
        if len(self.app.screen_stack) > 2:
            self.app.pop_screen()

    def on_frame_table_sort_changed(self, _: Any) -> None:
        self.refresh_titles()

    # An alert list's title says where the highlighted alert comes from, and its links: redrawn
    # as the cursor moves and as the list gains or loses the focus.
    def on_frame_table_cursor_moved(self, event: FrameTable.CursorMoved) -> None:
        if isinstance(event.table, AlertTable):
            self.refresh_titles()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if isinstance(event.widget, AlertTable):
            self.refresh_titles()

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        if isinstance(event.widget, AlertTable):
            self.refresh_titles()
