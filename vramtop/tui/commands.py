"""The command palette's own entries: what the app's feed can do, and the themes."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from textual.app import SystemCommand

if TYPE_CHECKING:
    from vramtop.tui.app import VramtopApp


def own(app: VramtopApp) -> Iterable[SystemCommand]:
    if app.replay:
        yield SystemCommand("Play / pause", "Play the recording (space)", app.command("pause"))
        yield SystemCommand("Start", "Go to the first frame (0)", app.command("go_start"))
        yield SystemCommand("End", "Go to the last frame ($)", app.command("go_end"))
    else:
        yield SystemCommand("Pause / resume", "Freeze the screen (p)", app.action_pause)
        yield SystemCommand("Refresh now", "Collect a frame now (r)", app.command("refresh"))
    yield SystemCommand("Snapshot", "Write the frame as text and Markdown (x)", app.action_snapshot)
    yield SystemCommand("Hosts", "Every fleet host, worst first (h)", app.action_hosts)
    if app.may_act:
        for name, verb, sig, key in SIGNAL_ENTRIES:
            help_text = f"Send {sig} to the selected process, after a confirmation ({key})"
            yield SystemCommand(f"{verb} process", help_text, app.signal_selected(name))
    if app.can_silence:
        yield SystemCommand(
            "Silence…", "Silence the selected alert, model or GPU (m)", app.action_silence
        )
        yield SystemCommand(
            "Silences", "Silences matching the view; expire one (M)", app.action_silences
        )
    if not app.replay:
        yield SystemCommand("Refresh slower", "Longer interval (+)", app.command("slower"))
        yield SystemCommand("Refresh faster", "Shorter interval (-)", app.command("faster"))


SIGNAL_ENTRIES = (
    ("terminate", "Terminate", "SIGTERM", "T"),
    ("kill", "Kill", "SIGKILL", "K"),
    ("interrupt", "Interrupt", "SIGINT", "I"),
)


def themes(app: VramtopApp) -> Iterable[SystemCommand]:
    for name in sorted(app.available_themes):
        if name.startswith("vramtop-"):
            yield SystemCommand(f"Theme: {name}", "Switch to this theme", _theme(app, name))


def _theme(app: VramtopApp, name: str):
    return lambda: setattr(app, "theme", name)
