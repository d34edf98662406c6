"""The silences that match the current view (its alerts, its model or GPU), read fresh from
Alertmanager off the UI thread; ``e`` expires the selected one after a confirmation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from vramtop.clean import literal
from vramtop.export.fmt import date_time
from vramtop.model import SilenceReading
from vramtop.tui.jobs import run_job
from vramtop.tui.screens.silence import reason


@dataclass
class SilencesListed(Message):
    silences: tuple[SilenceReading, ...]
    error: str | None = None


@dataclass
class SilenceExpired(Message):
    silence_id: str
    error: str | None = None


def describe(s: SilenceReading) -> str:
    return ", ".join(m.text for m in s.matchers)


class ConfirmExpire(ModalScreen[bool]):
    """Names what is at stake before a silence ends: its matchers, author, comment, end."""

    DEFAULT_CSS = """
    ConfirmExpire { align: center middle; }
    ConfirmExpire > Static {
        width: 80; max-width: 100%; height: auto; border: round $warning; padding: 0 1;
        background: $surface;
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Expire it"),
        Binding("n,escape", "answer(False)", "Keep it"),
    ]

    def __init__(self, silence: SilenceReading) -> None:
        super().__init__()
        self.silence = silence

    def compose(self) -> ComposeResult:
        s = self.silence
        text = Text(f"Expire silence {s.id}?\n", style="bold")
        text.append(f"{literal(describe(s))}\n")
        text.append(f"by {literal(s.created_by)} until {date_time(s.ends_at)}: ")
        text.append(f"{literal(s.comment)}\n")
        text.append("The alerts it mutes notify again.  y: expire  ·  n/esc: keep")
        yield Static(text)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class SilencesScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    SilencesScreen { align: center middle; }
    SilencesScreen > #silences-box {
        width: 110; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; padding: 0 1; background: $surface;
    }
    SilencesScreen DataTable { height: auto; max-height: 20; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Close"),
        Binding("e", "expire", "Expire the selected silence"),
        Binding("r", "reload", "Reload"),
    ]

    def __init__(self, client: Any, relevant: Callable[[SilenceReading], bool], about: str):
        super().__init__()
        self.client = client
        self.relevant = relevant
        self.about = about
        self.shown: list[SilenceReading] = []
        self.loaded = False
        self.note = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="silences-box"):
            yield Static(Text(f"Silences matching {self.about}", style="bold"), id="silences-title")
            yield DataTable(id="silences-table", cursor_type="row")
            yield Static(Text("loading…"), id="silences-note")
            yield Static(Text("e: expire  ·  r: reload  ·  esc: close"))

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Until", "Matchers", "By", "Comment", "ID")
        table.focus()
        self.action_reload()

    def action_reload(self) -> None:
        client, post = self.client, self.post_message

        def job() -> None:
            try:
                post(SilencesListed(client.active()))
            except Exception as err:
                post(SilencesListed((), reason(err)))

        run_job(job, "vramtop-silences")

    def set_note(self, text: str) -> None:
        self.note = text
        self.query_one("#silences-note", Static).update(Text(text))

    def on_silences_listed(self, message: SilencesListed) -> None:
        self.loaded = True
        if message.error is not None:
            self.set_note(message.error)
            return
        self.shown = [s for s in message.silences if self.relevant(s)]
        table = self.query_one(DataTable)
        table.clear()
        for s in self.shown:
            table.add_row(
                Text(date_time(s.ends_at)),
                Text(literal(describe(s))),
                Text(literal(s.created_by)),
                Text(literal(s.comment)),
                Text(s.id[:8]),
                key=s.id,
            )
        total = len(message.silences)
        self.set_note(f"{len(self.shown)} of {total} active silences match" if total else "none")

    def selected(self) -> SilenceReading | None:
        row = self.query_one(DataTable).cursor_row
        return self.shown[row] if 0 <= row < len(self.shown) else None

    def action_expire(self) -> None:
        silence = self.selected()
        if silence is None:
            self.set_note("No silence selected")
            return
        self.app.push_screen(ConfirmExpire(silence), lambda yes: self._confirmed(silence, yes))

    def _confirmed(self, silence: SilenceReading, yes: bool | None) -> None:
        if not yes:
            return
        client, post, sid = self.client, self.post_message, silence.id

        def job() -> None:
            try:
                client.expire(sid)
            except Exception as err:
                post(SilenceExpired(sid, reason(err)))
            else:
                post(SilenceExpired(sid))

        self.set_note(f"Expiring {sid}…")
        run_job(job, "vramtop-expire")

    def on_silence_expired(self, message: SilenceExpired) -> None:
        if message.error is not None:
            self.set_note(message.error)
            return
        self.app.notify(f"Silence {message.silence_id} expired", timeout=5, markup=False)
        self.action_reload()

    def action_close(self) -> None:
        self.dismiss(None)
