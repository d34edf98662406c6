"""The table behind every list: a Line API widget that redraws only the rows that changed.

Rows are positional. Each frame the subclass hands over its items (key, sort values, cells);
the table filters and sorts them, compares each row's cells with what it shows, and drops the
cached Strip of the rows that differ; the rest are painted from cache. Columns are chosen to
fit the width, by priority, and rebuilt only on resize. Cursor, keys, mouse and a fixed header
are handled here (a DataTable re-renders every visible cell after any update, which costs
several times nvitop's CPU at 1 s with 64 processes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from vramtop.export.columns import PADDING, Col, fit_columns
from vramtop.tui.cells import same

__all__ = ["Col", "FrameTable", "Item", "fit_columns"]


@dataclass
class Item:
    """One row. Its cells are given, or made when first drawn (``make``): with ``sig``, what
    the cells show, a row is compared by that alone, so a list of a thousand rows builds
    cells only for the rows on screen."""

    key: str
    cells: dict[str, Text] | None = None
    sort: dict[str, Any] = field(default_factory=dict)
    search: str = ""  # what the filter matches against (lower case)
    make: Callable[[], dict[str, Text]] | None = None
    sig: Any = None

    def texts(self) -> dict[str, Text]:
        if self.cells is None:
            self.cells = self.make() if self.make is not None else {}
        return self.cells


def _sort_key(value: Any) -> tuple[int, Any]:
    return (1, 0) if value is None else (0, value)


class FrameTable(ScrollView, can_focus=True):
    """A list of items with a fixed header, a row cursor, sorting and filtering."""

    COLUMNS: ClassVar[tuple[Col, ...]] = ()
    DEFAULT_SORT: ClassVar[str] = ""
    DEFAULT_REVERSE: ClassVar[bool] = False
    DESCENDING_FIRST: ClassVar[frozenset[str]] = frozenset()  # sorted big-first when chosen

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "frame-table--header",
        "frame-table--cursor",
        "frame-table--cursor-blurred",
    }
    DEFAULT_CSS = """
    FrameTable {
        height: auto;
        max-height: 100%;
        overflow-x: hidden;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Open"),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("j", "cursor_down", "Cursor down", show=False),
        Binding("k", "cursor_up", "Cursor up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("home,g", "first", "First row", show=False),
        Binding("end,G", "last", "Last row", show=False),
        Binding("s", "next_sort", "Sort"),
        Binding("S", "reverse_sort", "Reverse sort", show=False),
    ]

    class Chosen(Message):
        """Enter (or a click on the row under the cursor): open its drill-down."""

        def __init__(self, table: FrameTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> FrameTable:
            return self.table

    class SortChanged(Message):
        def __init__(self, table: FrameTable) -> None:
            super().__init__()
            self.table = table

    class CursorMoved(Message):
        """The cursor is on another row (a screen may say more about that row)."""

        def __init__(self, table: FrameTable) -> None:
            super().__init__()
            self.table = table

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.spec: tuple[Col, ...] = self.COLUMNS  # the columns this instance may show
        self.sort_column = self.DEFAULT_SORT or (self.COLUMNS[0].key if self.COLUMNS else "")
        self.sort_reverse = self.DEFAULT_REVERSE
        self.filter_text = ""
        self.cursor_row = 0
        self.total = 0
        self.view: Any = None  # the last View shown
        self._items: list[Item] = []
        self._shown: list[Item] = []  # after filter and sort, in display order
        self._layout: list[tuple[Col, int]] = []
        self._width = 0
        self._strips: dict[int, Strip] = {}  # row -> its rendered cells on the base style
        self._header: Strip | None = None
        self._styles: tuple[Style, Style, Style, Style] | None = None
        # key -> (what its row was built from, the Item): a row whose inputs are unchanged is
        # not built again (cells, sort values) nor compared cell by cell.
        self._reused: dict[str, tuple[Any, Item]] = {}
        self._building: dict[str, tuple[Any, Item]] = {}
        self._row_context: tuple[Any, ...] = ()

    # -- data ------------------------------------------------------------------------------

    def items_for(self, view: Any) -> list[Item]:
        """The rows for a View; subclasses build their cells here."""
        return []

    def show(self, view: Any) -> None:
        self.view = view
        self.show_items(self.build_items(view))

    def build_items(self, view: Any) -> list[Item]:
        """``items_for``, reusing the Items of rows whose signature did not change."""
        context = (view.palette, view.targets)
        if len(context) != len(self._row_context) or any(
            a is not b for a, b in zip(context, self._row_context, strict=True)
        ):
            self._reused.clear()  # other colours or thresholds: every row is built again
            self._row_context = context
        self._building = {}
        items = self.items_for(view)
        self._reused, self._building = self._building, {}
        return items

    def reuse(self, key: str, sig: Any, build: Callable[[], Item]) -> Item:
        """The Item built last frame for ``key`` where ``sig`` (everything its cells and sort
        values are made from, bar the palette, targets and widths) is equal, else ``build()``."""
        hit = self._reused.get(key)
        if hit is None or hit[0] != sig:
            hit = (sig, build())
        self._building[key] = hit
        return hit[1]

    def set_spec(self, spec: tuple[Col, ...]) -> None:
        """Other columns (a GPU list that spans hosts gains a Host column)."""
        if spec != self.spec:
            self.spec = spec
            self._layout = []
            self._relayout()

    def show_items(self, items: list[Item]) -> None:
        self._items = items
        self.total = len(items)
        self._apply()

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self._apply()

    @property
    def keys(self) -> list[str]:
        return [item.key for item in self._shown]

    @property
    def row_count(self) -> int:
        return len(self._shown)

    @property
    def selected_key(self) -> str | None:
        row = self.cursor_row
        return self._shown[row].key if 0 <= row < len(self._shown) else None

    def get_cell(self, row: int | str, column: str) -> Text:
        return self._shown[int(row)].texts().get(column, Text())

    def width_of(self, key: str, default: int = 10) -> int:
        return next((w for c, w in self._layout if c.key == key), default)

    def _ordered(self) -> list[Item]:
        needle = self.filter_text.lower()
        items = [i for i in self._items if needle in i.search] if needle else list(self._items)
        col = self.sort_column
        items.sort(key=lambda i: _sort_key(i.sort.get(col)), reverse=self.sort_reverse)
        if self.sort_reverse:  # unknown values last either way
            items.sort(key=lambda i: i.sort.get(col) is None)
        return items

    def _apply(self) -> None:
        selected = self.selected_key
        old, new = self._shown, self._ordered()
        columns = [c.key for c, _ in self._layout]
        changed = [
            i for i, item in enumerate(new) if i >= len(old) or not _same_row(old[i], item, columns)
        ]
        for i in changed:
            self._strips.pop(i, None)
        for i in range(len(new), len(old)):
            self._strips.pop(i, None)
        self._shown = new
        cursor = self.cursor_row
        keys = self.keys
        if selected is not None and selected in keys:
            self.cursor_row = keys.index(selected)
        self.cursor_row = max(0, min(self.cursor_row, len(new) - 1))
        if len(old) != len(new) or cursor != self.cursor_row or len(changed) > 8:
            self.virtual_size = Size(self.size.width, len(new) + 1)
            self.refresh()
        else:
            for i in changed:  # only those lines are painted again
                self.refresh_line(i + 1)

    # -- columns and styles ----------------------------------------------------------------

    def on_resize(self, _: events.Resize) -> None:
        self._relayout()

    def on_mount(self) -> None:
        self._relayout()

    def _relayout(self) -> None:
        width = self.size.width
        if not width:
            return
        layout = fit_columns(self.spec, max(10, width - 1))  # one cell for the scrollbar
        if layout == self._layout and width == self._width:
            self.virtual_size = Size(width, len(self._shown) + 1)
            return
        self._layout, self._width = layout, width
        self._forget()
        if self.view is not None:  # bars and sparklines follow the column widths
            self._items = self.build_items(self.view)
            self._shown = self._ordered()
        self.virtual_size = Size(width, len(self._shown) + 1)
        self.refresh()

    def _forget(self) -> None:
        self._reused.clear()
        self._strips.clear()
        self._header = None
        self._styles = None

    def _style_set(self) -> tuple[Style, Style, Style, Style]:
        """Base, header, cursor and unfocused cursor styles (cached until styles change)."""
        if self._styles is None:
            base = self.rich_style
            self._styles = (
                base,
                base + self.get_component_rich_style("frame-table--header"),
                base + self.get_component_rich_style("frame-table--cursor"),
                base + self.get_component_rich_style("frame-table--cursor-blurred"),
            )
        return self._styles

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._forget()

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._shown) + 1

    # -- rendering -------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base, header, cursor, blurred = self._style_set()
        if y == 0:
            if self._header is None:
                labels = [self._label(col) for col, _ in self._layout]
                self._header = self._render_row(labels, header).crop_extend(0, width, header)
            return self._header
        row = int(self.scroll_y) + y - 1
        if row >= len(self._shown):
            return Strip.blank(width, base)
        if row == self.cursor_row:  # the one row drawn on another background
            style = cursor if self.has_focus else blurred
            return self._row_cells(row, style).crop_extend(0, width, style)
        strip = self._strips.get(row)
        if strip is None:
            strip = self._strips[row] = self._row_cells(row, base).crop_extend(0, width, base)
        return strip

    def _row_cells(self, row: int, style: Style) -> Strip:
        cells = self._shown[row].texts()
        return self._render_row([cells.get(col.key, Text()) for col, _ in self._layout], style)

    def _render_row(self, cells: list[Text], style: Style) -> Strip:
        console = self.app.console
        pad = Segment(" " * PADDING, style)
        segments: list[Segment] = []
        for (col, width), text in zip(self._layout, cells, strict=True):
            segments.append(pad)
            segments.extend(_fit(text, width, col.justify, console, style))
            segments.append(pad)
        return Strip(segments)

    def _label(self, col: Col) -> Text:
        label = col.label
        if col.key == self.sort_column and col.sortable:
            label += "▼" if self.sort_reverse else "▲"
        return Text(label, justify=col.justify)  # type: ignore[arg-type]

    # -- cursor, keys, mouse ---------------------------------------------------------------

    def move_cursor(self, row: int) -> None:
        row = max(0, min(row, len(self._shown) - 1))
        if row != self.cursor_row:
            self.refresh_line(self.cursor_row + 1)
            self.cursor_row = row
            self.refresh_line(row + 1)
            self.post_message(self.CursorMoved(self))
        visible = max(1, self.size.height - 1)
        top = int(self.scroll_y)
        if row < top:
            self.scroll_to(y=row, animate=False)
        elif row >= top + visible:
            self.scroll_to(y=row - visible + 1, animate=False)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor_row + 1)

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor_row - 1)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor_row + max(1, self.size.height - 2))

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor_row - max(1, self.size.height - 2))

    def action_first(self) -> None:
        self.move_cursor(0)

    def action_last(self) -> None:
        self.move_cursor(len(self._shown) - 1)

    def action_select_cursor(self) -> None:
        key = self.selected_key
        if key is not None:
            self.post_message(self.Chosen(self, key))

    def on_focus(self) -> None:
        self.refresh_line(self.cursor_row + 1)

    def on_blur(self) -> None:
        self.refresh_line(self.cursor_row + 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        if offset.y == 0:
            x = 0
            for col, width in self._layout:
                x += width + 2 * PADDING
                if offset.x < x:
                    if col.sortable:
                        self.sort_by(col.key)
                    return
            return
        row = int(self.scroll_y) + offset.y - 1
        if not 0 <= row < len(self._shown):
            return
        if row == self.cursor_row:
            self.action_select_cursor()
        else:
            self.move_cursor(row)

    # -- sorting ---------------------------------------------------------------------------

    @property
    def sort_label(self) -> str:
        col = next((c for c in self.spec if c.key == self.sort_column), None)
        name = col.label.strip() if col else self.sort_column
        return f"{name}{'▼' if self.sort_reverse else '▲'}"

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        if key == self.sort_column and reverse is None:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column = key
            self.sort_reverse = reverse if reverse is not None else key in self.DESCENDING_FIRST
        self._header = None
        self._apply()
        self.refresh()  # the header's arrow moved
        self.post_message(self.SortChanged(self))

    def action_next_sort(self) -> None:
        keys = [c.key for c in self.spec if c.sortable]
        if not keys:
            return
        i = keys.index(self.sort_column) if self.sort_column in keys else -1
        key = keys[(i + 1) % len(keys)]
        self.sort_by(key, reverse=key in self.DESCENDING_FIRST)

    def action_reverse_sort(self) -> None:
        self.sort_by(self.sort_column)


def _same_row(a: Item, b: Item, columns: list[str]) -> bool:
    if a is b:  # reused: its inputs did not change
        return True
    if a.sig is not None and b.sig is not None:
        return a.sig == b.sig
    ta, tb = a.texts(), b.texts()
    return all(same(ta.get(c), tb.get(c)) for c in columns)


def _fit(text: Text, width: int, justify: str, console: Any, style: Style) -> list[Segment]:
    """One cell on ``style``: cut with an ellipsis when too long, else padded to ``width``."""
    length = text.cell_len
    if length > width:
        text = text.copy()
        text.truncate(width, overflow="ellipsis")
        length = text.cell_len
    segments = [
        Segment(s.text, style + s.style if s.style else style)
        for s in text.render(console, end="")
        if s.text
    ]
    fill = width - length
    if fill <= 0:
        return segments
    blank = Segment(" " * fill, style)
    return [blank, *segments] if justify == "right" else [*segments, blank]
