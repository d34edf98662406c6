"""Confirm a signal: what it would stop (pid, user, command, model, VRAM, GPUs, the model's other
processes) and two buttons, Cancel focused. Text from outside is shown literally."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from vramtop import clean
from vramtop.actions import SIGNALS, Stake, describe_vram
from vramtop.model import iso_utc
from vramtop.units import gib

VERBS = {"terminate": "Terminate", "kill": "Kill", "interrupt": "Interrupt"}
COMMAND_COLUMNS = 400  # a command line longer than this is cut (the row shows it whole)


def stake_text(s: Stake, name: str) -> Text:
    """The body of the confirmation, plain (styles come from the screen's CSS)."""
    out = Text()
    out.append(f"{VERBS[name]} pid {s.pid} with {SIGNALS[name].name}?\n\n", "bold")
    rows = [
        ("PID", f"{s.pid}, started {iso_utc(s.started_at)}" if s.started_at else str(s.pid)),
        ("User", clean.shorten(s.user, 60)),
        ("Command", clean.shorten(s.command, COMMAND_COLUMNS)),
        ("Model", clean.shorten(s.model, 120)),
        ("VRAM", describe_vram(s)),
        ("GPUs", ",".join(str(i) for i in s.gpus) or "n/a"),
    ]
    for label, value in rows:
        out.append(f"{label:<9}", "bold")
        out.append(value + "\n")
    if s.peers:
        out.append(f"\nOther processes of {clean.shorten(s.model, 120)}:\n", "bold")
        for p in s.peers:
            on = ",".join(str(i) for i in p.gpus)
            out.append(f"  pid {p.pid} on GPU {on} ({gib(p.vram_bytes)})\n")
        out.append("\n" + (s.stops_model or "") + "\n", "bold")
    return out


class ConfirmSignal(ModalScreen[bool]):
    """True when the user confirms; Esc, n, or Enter on the focused Cancel keeps the process."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,n", "cancel", "Cancel"),
        Binding("y", "confirm", "Send the signal"),
    ]
    DEFAULT_CSS = """
    ConfirmSignal { align: center middle; }
    ConfirmSignal #confirm-body {
        width: 90%; max-width: 110; height: auto; max-height: 90%;
        border: thick $error; background: $surface; padding: 1 2;
    }
    ConfirmSignal #confirm-buttons { height: auto; align: right middle; margin-top: 1; }
    ConfirmSignal Button { margin-left: 2; }
    """

    def __init__(self, stake: Stake, name: str) -> None:
        super().__init__()
        self.stake = stake
        self.signal_name = name

    def compose(self) -> ComposeResult:
        label = SIGNALS[self.signal_name].name
        with Vertical(id="confirm-body") as body:
            body.border_title = f"{VERBS[self.signal_name]} a process"
            body.border_subtitle = f"y: send {label} · Esc / n: cancel"
            yield Static(stake_text(self.stake, self.signal_name), id="confirm-text")
            with Horizontal(id="confirm-buttons"):
                yield Button("Cancel", id="cancel")
                yield Button(f"Send {label}", id="confirm", variant="error")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "confirm")

    def action_cancel(self) -> None:
        self.dismiss(False)

    def action_confirm(self) -> None:
        self.dismiss(True)
