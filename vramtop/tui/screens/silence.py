"""The silence form: matchers (prefilled from an alert, a model or a GPU, editable, one a line),
a duration and a required comment. Creating the silence runs off the UI thread; a refusal is
one sentence under the form, which keeps everything typed. Values are shown and sent exactly:
nothing typed is read as markup."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Static, TextArea

from vramtop.clean import one_line
from vramtop.model import SilenceMatcher
from vramtop.silencing import (
    DEFAULT_DURATION,
    DURATIONS,
    SilenceError,
    matcher_lines,
    parse_matchers,
    parse_seconds,
)
from vramtop.tui.jobs import run_job

MATCHER_HELP = "Matchers, one a line: label=value  label!=value  label=~regex  label!~regex"


def reason(err: BaseException) -> str:
    """A client's failure as its sentence (a SourceError's reason, a SilenceError's text)."""
    return getattr(err, "reason", None) or one_line(err) or type(err).__name__


@dataclass
class SilenceCreated(Message):
    """The answer to a create: the new silence's id, or why there is none."""

    silence_id: str | None
    error: str | None = None


def create_job(
    client: Any,
    matchers: tuple[SilenceMatcher, ...],
    seconds: float,
    created_by: str,
    comment: str,
    post: Callable[[Message], Any],
) -> Callable[[], None]:
    def job() -> None:
        try:
            sid = client.create(matchers, seconds, created_by, comment)
        except Exception as err:  # a SourceError's sentence; anything else, said once
            post(SilenceCreated(None, reason(err)))
        else:
            post(SilenceCreated(sid))

    return job


class SilenceForm(ModalScreen[str | None]):
    """Dismissed with the new silence's id, or None when cancelled."""

    DEFAULT_CSS = """
    SilenceForm { align: center middle; }
    SilenceForm > #silence-box {
        width: 96; max-width: 100%; height: auto; max-height: 100%;
        border: round $accent; padding: 0 1; background: $surface;
    }
    SilenceForm TextArea { height: 6; }
    SilenceForm .label { color: $text-muted; }
    SilenceForm #silence-error { color: $error; height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Create the silence"),
    ]

    def __init__(
        self, client: Any, matchers: tuple[SilenceMatcher, ...], created_by: str, about: str
    ) -> None:
        super().__init__()
        self.client = client
        self.prefill = matchers
        self.created_by = created_by
        self.about = about
        self.busy = False
        self.error = ""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="silence-box"):
            yield Static(Text(f"Silence {self.about}", style="bold"), id="silence-title")
            # The sentence goes on top: visible however small the terminal.
            yield Static(Text(""), id="silence-error")
            yield Static(Text(MATCHER_HELP), classes="label")
            yield TextArea(
                matcher_lines(self.prefill),
                id="silence-matchers",
                soft_wrap=False,
                show_line_numbers=False,
            )
            yield Static(Text("Duration: 30m, 1h, 4h, 1d, or any such as 2h30m"), classes="label")
            yield Input(
                DEFAULT_DURATION, id="silence-duration", suggester=SuggestFromList(DURATIONS)
            )
            yield Static(Text("Comment (required)"), classes="label")
            yield Input(placeholder="why is it silenced?", id="silence-comment")
            hint = f"Created by {self.created_by}  ·  ctrl+s or ⏎ in the comment: create  ·  esc"
            yield Static(Text(hint), classes="label")

    def on_mount(self) -> None:
        self.query_one("#silence-comment", Input).focus()

    @property
    def matchers_text(self) -> str:
        return self.query_one("#silence-matchers", TextArea).text

    @property
    def duration_text(self) -> str:
        return self.query_one("#silence-duration", Input).value

    @property
    def comment_text(self) -> str:
        return self.query_one("#silence-comment", Input).value

    def show_error(self, text: str) -> None:
        self.error = text
        self.query_one("#silence-error", Static).update(Text(text))
        if text:
            self.query_one("#silence-box").scroll_home(animate=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "silence-comment":
            self.action_submit()
        else:
            self.query_one("#silence-comment", Input).focus()

    def action_submit(self) -> None:
        if self.busy:
            return
        try:
            matchers = parse_matchers(self.matchers_text)
            seconds = parse_seconds(self.duration_text)
            if not self.comment_text.strip():
                raise SilenceError("a comment is required: say why the alert is silenced")
        except SilenceError as err:
            self.show_error(str(err))
            return
        self.busy = True
        self.show_error("")
        self.query_one("#silence-error", Static).update(Text("Creating the silence…"))
        job = create_job(
            self.client, matchers, seconds, self.created_by, self.comment_text, self.post_message
        )
        run_job(job, "vramtop-silence")

    def on_silence_created(self, message: SilenceCreated) -> None:
        self.busy = False
        if message.error is not None or message.silence_id is None:
            self.show_error(message.error or "Alertmanager sent no silence ID")
            return
        self.dismiss(message.silence_id)

    def action_cancel(self) -> None:
        self.dismiss(None)
