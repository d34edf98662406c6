"""GPU processes: PID, user, VRAM, SM/memory-controller use, host CPU, RSS and age, model and
the full command line (shown literally). T, K and I ask to signal the selected one (the app
confirms and sends); absent when the app may not act."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message

from vramtop.export.columns import PROCESS_COLUMNS
from vramtop.model import ProcessReading
from vramtop.tui import cells
from vramtop.tui.view import View
from vramtop.tui.widgets.frame_table import Col, FrameTable, Item


class ProcessTable(FrameTable):
    COLUMNS: ClassVar[tuple[Col, ...]] = PROCESS_COLUMNS
    DEFAULT_SORT = "vram"
    DEFAULT_REVERSE = True
    DESCENDING_FIRST = frozenset({"vram", "sm", "mem", "cpu", "rss"})  # age: youngest first
    NOUN = "processes"
    # Upper case, as nvitop has them: a stray lower-case key (k moves the cursor) never asks.
    SIGNAL_KEYS: ClassVar[list[BindingType]] = [
        Binding("T", "signal('terminate')", "Terminate the process (SIGTERM)", show=False),
        Binding("K", "signal('kill')", "Kill the process (SIGKILL)", show=False),
        Binding("I", "signal('interrupt')", "Interrupt the process (SIGINT)", show=False),
    ]
    BINDINGS: ClassVar[list[BindingType]] = SIGNAL_KEYS  # and FrameTable's, inherited

    class SignalWanted(Message):
        """T, K or I on a row: ``name`` is a vramtop.actions.SIGNALS key; ``view`` what the
        user saw when asking (its start time identifies the process)."""

        def __init__(self, table: ProcessTable, key: str, name: str) -> None:
            super().__init__()
            self.table = table
            self.key = key
            self.name = name
            self.view: View | None = table.view

    def __init__(
        self,
        gpu: int | None = None,
        pids: Iterable[int] | None = None,
        hide: Iterable[str] = (),
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.spec = tuple(c for c in self.COLUMNS if c.key not in set(hide))
        self.gpu = gpu
        self.pids = None if pids is None else set(pids)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "signal":  # read-only or a replay: the keys do not exist
            return bool(getattr(self.app, "may_act", False))
        return True

    def action_signal(self, name: str) -> None:
        key = self.selected_key
        if key is not None:
            self.post_message(self.SignalWanted(self, key, name))

    def items_for(self, view: View) -> list[Item]:
        items = []
        for g in view.frame.gpus:
            if self.gpu is not None and g.index != self.gpu:
                continue
            for proc in g.processes:
                if self.pids is not None and proc.pid not in self.pids:
                    continue
                age = (
                    None if proc.started_at is None else max(0.0, view.frame.time - proc.started_at)
                )
                # What a row shows: a row is compared by this, and its cells are made only
                # when drawn (most of a long list is scrolled out of sight).
                sig = (proc, cells.age(age), view.palette)
                key = f"{proc.gpu_index}:{proc.pid}"
                items.append(self.reuse(key, sig, self._maker(view, proc, age, sig)))
        return items

    def _maker(
        self, view: View, proc: ProcessReading, age: float | None, sig: Any
    ) -> Callable[[], Item]:
        return lambda: self._item(view, proc, age, sig)

    def _cells(self, view: View, proc: ProcessReading, age: float | None) -> dict[str, Text]:
        p = view.palette
        if proc.command:
            command = cells.lit(proc.command, p.text)
            if proc.detail:
                command.append(" (" + proc.detail + ")", p.dim)
        else:
            command = cells.lit(proc.detail or proc.name or "n/a", p.dim)
        c: dict[str, Text] = {
            "pid": cells.plain(str(proc.pid), p.text, "right"),
            "gpu": cells.plain(str(proc.gpu_index), p.text, "right"),
            "user": cells.lit(proc.user, p.text) if proc.user else cells.dash(p, "left"),
            "vram": cells.number(cells.gib(proc.used_memory_bytes), p),
            "sm": cells.number(cells.pct(proc.sm_percent), p),
            "mem": cells.number(cells.pct(proc.memory_controller_percent), p),
            "cpu": cells.number(cells.pct(proc.cpu_percent), p),
            "rss": cells.number(cells.gib(proc.rss_bytes), p),
            "age": cells.number(cells.age(age), p),
            "model": cells.lit(proc.model, p.primary) if proc.model else cells.dash(p, "left"),
            "command": command,
        }
        return c

    def _item(self, view: View, proc: ProcessReading, age: float | None, sig: Any) -> Item:
        return Item(
            key=f"{proc.gpu_index}:{proc.pid}",
            make=lambda: self._cells(view, proc, age),
            sig=sig,
            sort={
                "pid": proc.pid,
                "gpu": proc.gpu_index,
                "user": proc.user,
                "vram": proc.used_memory_bytes,
                "sm": proc.sm_percent,
                "mem": proc.memory_controller_percent,
                "cpu": proc.cpu_percent,
                "rss": proc.rss_bytes,
                # Not the age itself: a reused row's would be as old as the row (youngest first).
                "age": None if proc.started_at is None else -proc.started_at,
                "model": proc.model,
                "command": proc.command,
            },
            search=" ".join(
                str(x) for x in (proc.pid, proc.user, proc.model, proc.name, proc.command) if x
            ).lower(),
        )
