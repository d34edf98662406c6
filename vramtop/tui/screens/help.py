"""? : every key binding, by where it works, generated from the bindings themselves."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

Entry = tuple[str, str]  # (keys as shown, what they do)

EXTRA_LIST_KEYS: tuple[Entry, ...] = (
    ("↑ ↓", "Move the cursor"),
    ("pgup pgdn home end", "Scroll a page, to the top, to the end"),
    ("click", "Select a row, again to open it; click a header to sort by it"),
)


def entries(app: App, bindings: Iterable[BindingType]) -> list[Entry]:
    """One entry per action: its keys joined, in the order they were declared."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for b in Binding.make_bindings(bindings):
        description = b.description or b.tooltip or b.action
        key = app.get_key_display(b)
        keys = grouped.setdefault((b.action, description), [])
        if key not in keys:
            keys.append(key)
    return [(" ".join(keys), description) for (_, description), keys in grouped.items()]


def help_text(sections: list[tuple[str, list[Entry]]], accent: str = "bold") -> Text:
    width = max((len(k) for _, items in sections for k, _ in items), default=8) + 2
    out = Text()
    for i, (title, items) in enumerate(sections):
        if i:
            out.append("\n")
        out.append(title + "\n", accent)
        for keys, description in items:
            out.append("  " + keys.ljust(width), "bold")
            out.append(description + "\n")
    return out


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss", "Close help"),
    ]

    def __init__(self, sections: list[tuple[str, list[Entry]]]) -> None:
        super().__init__()
        self.sections = sections
        self.text = help_text(sections)

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body") as body:
            body.border_title = "vramtop keys"
            body.border_subtitle = "Esc / ? / q close"
            yield Static(self.text, id="help-text")
