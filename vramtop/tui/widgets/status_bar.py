"""The top line: host, driver, DEMO, read-only, the frame's time and age, refresh interval,
PAUSED, REC while recording, the last signal's outcome; in a replay, where it is in the
recording and how it plays."""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget

from vramtop import clean
from vramtop.actions import Outcome
from vramtop.export import fmt
from vramtop.feeds import Position
from vramtop.model import Frame, iso_utc
from vramtop.records import record
from vramtop.tui import cells
from vramtop.tui.palette import Palette


@record(slots=False)
class Status:
    shown: Frame | None  # on screen (frozen while paused)
    latest: Frame | None  # newest collected
    now: float
    interval: float
    paused: bool
    waiting_since: float | None  # a collection is running since then
    problem: str | None  # the last collection failure, if the last attempt failed
    palette: Palette
    slow_after: float = 6.0  # a collection running longer than this is itself late
    recording: str | None = None  # --record FILE
    record_problem: str | None = None  # the last write failed
    replay: Position | None = None
    readonly: bool = False  # --readonly: no actions
    acted: Outcome | None = None  # the last signal, while recent
    remote_interval: float | None = None  # Prometheus and Alertmanager are read this often
    paused_every: float | None = None  # while paused, data is read this often

    @property
    def stale_for(self) -> float | None:
        """How old the data is when it is later than the interval and timeout explain."""
        waited = None if self.waiting_since is None else self.now - self.waiting_since
        late = waited is not None and waited > self.slow_after
        if self.latest is None:
            return waited if late else None
        age = self.now - self.latest.time
        return age if late or age > 2 * self.interval + self.slow_after else None


class StatusBar(Widget):
    DEFAULT_CSS = "StatusBar { height: 1; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._parts = (Text(), Text(), Text())

    def show(self, status: Status) -> None:
        parts = self._parts_for(status)
        if not all(cells.same(a, b) for a, b in zip(parts, self._parts, strict=True)):
            self._parts = parts
            self.refresh()

    def render(self) -> Text:
        left, right, short = self._parts
        width = self.size.width or (len(left) + len(right) + 1)
        if len(left) + len(right) > width:
            left = short
        if len(right) > width - 12:  # narrow: the status matters more than the host name
            right = right[: max(0, width - 12)]
        room = width - len(right)
        line = left[:room] if len(left) > room else left
        out = Text(no_wrap=True)
        out.append_text(line)
        out.append(" " * max(0, room - len(line)))
        out.append_text(right)
        return out

    def _parts_for(self, s: Status) -> tuple[Text, Text, Text]:
        p = s.palette
        left = Text(no_wrap=True, overflow="ellipsis")
        left.append(" vramtop ", p.badge)
        if s.readonly:
            left.append(" read-only", p.warn)
        short = left
        frame = s.shown or s.latest
        if frame is not None:
            left.append(" ")
            if frame.demo:
                left.append(" DEMO ", p.alarm)
                left.append(" ")
            left.append(clean.literal(frame.host.hostname), p.primary)
            if frame.demo:
                left.append(" (simulated)", p.warn)
            short = left.copy()
            if frame.driver_version:
                left.append("  driver " + clean.literal(frame.driver_version), p.dim)
        right = Text(no_wrap=True)
        if s.acted is not None:
            a = s.acted
            right.append(
                f"{a.signal} pid {a.pid}: {'sent' if a.sent else 'not sent'}  ",
                p.good if a.sent else p.bad,
            )
        if s.replay is not None:
            return left, _replay_part(s, s.replay, right), short
        if s.recording is not None:
            right.append(" REC ", p.alarm)
            right.append(" " + clean.literal(s.recording), p.text)
            right.append(": write failed  " if s.record_problem else "  ", p.bad)
        stale = s.stale_for
        if s.paused:
            # Nothing here ages while paused (no "newer data 42s"): the line, like the rest of
            # the screen, is drawn once and then left alone.
            right.append(" PAUSED ", p.badge)
            if s.shown is not None:
                right.append(f" at {fmt.time_of_day(s.shown.time)}", p.warn)
            every = s.paused_every or s.interval
            right.append(f" · reading every {cells.interval(every)} · p resumes ", p.dim)
            return left, right, short
        if s.latest is None:
            if stale is not None:
                right.append(f" no data yet: collecting for {cells.age(stale)} ", p.alarm)
            else:
                right.append("collecting…", p.dim)
        else:
            if stale is not None:
                right.append(f" STALE: no new data for {cells.age(stale)} ", p.alarm)
                right.append(" ")
            right.append(fmt.time_of_day(s.latest.time), p.text)
        if s.problem:
            right.append("  " + s.problem, p.bad)
        every = f"  every {cells.interval(s.interval)}"
        if s.remote_interval is not None and s.remote_interval > s.interval + 1e-9:
            every += f", Prometheus {cells.interval(s.remote_interval)}"
        right.append(every + " ", p.dim)
        return left, right, short

    @property
    def text(self) -> str:
        return self._parts[0].plain + " " + self._parts[1].plain


def _replay_part(s: Status, r: Position, out: Text) -> Text:
    p = s.palette
    out.append(" REPLAY ", p.badge)
    if s.shown is not None:
        out.append(" " + iso_utc(s.shown.time), p.primary)
    out.append(f"  frame {r.index + 1}/{r.count}", p.text)
    if s.shown is None:
        out.append(" loading…", p.dim)
    out.append(f"  ▶ {r.speed:g}x " if r.playing else f"  paused {r.speed:g}x ", p.warn)
    return out
