"""Signalling a process from the live view: from a key on a process row (or the palette) to
the confirmation, then the signal off the UI thread, then its outcome in a notification and
the status line. The row itself stays until NVML stops reporting the process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vramtop import actions
from vramtop.tui.jobs import run_job, signal_job
from vramtop.tui.widgets.process_table import ProcessTable

if TYPE_CHECKING:
    from vramtop.tui.app import VramtopApp

NOTE_SECONDS = 30.0  # how long the status line keeps the last outcome


def ask(app: VramtopApp, table: ProcessTable, key: str, name: str) -> None:
    """Confirm, then send, ``name`` to the process of row ``key`` as the table last showed it."""
    from vramtop.tui.screens.confirm import ConfirmSignal  # loaded when first asked

    view = table.view
    if not app.may_act or view is None:
        return
    gpu_index, _, pid_text = key.partition(":")
    frame = view.frame
    gpu = next(
        (
            g
            for g in frame.gpus
            if str(g.index) == gpu_index and any(str(p.pid) == pid_text for p in g.processes)
        ),
        None,
    )
    if gpu is None:
        return
    proc = next(p for p in gpu.processes if str(p.pid) == pid_text)
    why = actions.refusal(frame, gpu, proc, app.replay)
    if why is not None:
        show(app, actions.Outcome(False, why, proc.pid, actions.SIGNALS[name].name))
        return
    stake = actions.stake(frame, proc, gpu.host)
    started_at = proc.started_at
    assert started_at is not None  # refusal() says so otherwise

    def answered(confirmed: bool | None) -> None:
        if confirmed and app.may_act:
            run_job(signal_job(proc.pid, started_at, name, app.post_message), "vramtop-signal")
        elif not confirmed:
            app.notify(f"Pid {proc.pid} not signalled", timeout=3, markup=False)

    app.push_screen(ConfirmSignal(stake, name), answered)


def from_palette(app: VramtopApp, name: str) -> None:
    """The palette's entry: the selected row of the process list that had the focus."""
    screen = app.live_screen()
    tables = [] if screen is None else [t for t in screen.query(ProcessTable) if t.display]
    focused = screen.focused if screen is not None else None
    table = focused if isinstance(focused, ProcessTable) else (tables[0] if tables else None)
    key = table.selected_key if table is not None else None
    if table is None or key is None:
        app.notify(
            "Select a process first: in a GPU or model drill-down, or the overview's process "
            "list (a tall terminal)",
            severity="warning",
            timeout=5,
            markup=False,
        )
        return
    ask(app, table, key, name)


def show(app: VramtopApp, outcome: actions.Outcome) -> None:
    """The outcome as a notification (the whole sentence) and in the status line."""
    app.acted = (outcome, app.clock())
    app.notify(
        outcome.message,
        title=f"{outcome.signal} sent" if outcome.sent else "Not signalled",
        severity="information" if outcome.sent else "error",
        timeout=8,
        markup=False,
    )
    app.redraw_status()


def note(app: VramtopApp) -> actions.Outcome | None:
    """The last outcome while it is recent enough for the status line."""
    if app.acted is None:
        return None
    outcome, at = app.acted
    return outcome if app.clock() - at < NOTE_SECONDS else None
