"""One-off jobs off the UI thread: writing a snapshot, fetching a model's history. Each reports
back by posting a Message; neither touches a widget."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from textual.message import Message

from vramtop import actions
from vramtop.clean import one_line
from vramtop.feeds import Backfill
from vramtop.fleet import Rules
from vramtop.history import Point
from vramtop.model import Frame
from vramtop.tui.messages import BackfillReady, SignalSent, SnapshotWritten
from vramtop.tui.snapshot import write_snapshot
from vramtop.worker import Worker

Post = Callable[[Message], Any]


def run_job(job: Callable[[], None], name: str) -> None:
    Worker(lambda _: job(), name).submit()


def snapshot_job(
    frame: Frame,
    directory: Path,
    post: Post,
    rules: Rules | None = None,
    links: tuple[tuple[str, str], ...] = (),
) -> Callable[[], None]:
    def job() -> None:
        try:
            paths = write_snapshot(frame, directory, rules, links)
        except OSError as err:
            post(
                SnapshotWritten(
                    (), f"cannot write a snapshot in {directory}: {err.strerror or err}"
                )
            )
        else:
            post(SnapshotWritten(paths))

    return job


def signal_job(pid: int, started_at: float, name: str, post: Post) -> Callable[[], None]:
    def job() -> None:
        post(SignalSent(actions.send(pid, started_at, name)))

    return job


def backfill_job(backfill: Backfill, model: str, window: float, post: Post) -> Callable[[], None]:
    from vramtop.tui.screens.model import SERIES  # the screen asking for it is open

    def job() -> None:
        try:
            raw = backfill(model, window)
            series = {name: finite(points) for name, points in dict(raw).items() if name in SERIES}
        except Exception as err:
            post(BackfillReady(model, window, {}, one_line(err)))
        else:
            post(BackfillReady(model, window, series))

    return job


def finite(points: Iterable[Any]) -> list[Point]:
    out: list[Point] = []
    for t, v in points:
        t, v = float(t), float(v)
        if math.isfinite(t) and math.isfinite(v):
            out.append((t, v))
    return out
