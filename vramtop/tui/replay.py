"""``vramtop --replay FILE``: the live view's screens over a recording.

No collector runs (no NVML, Prometheus or psutil): Frames come from the Recording through the
decoding thread (replay_feed) and are shown as the live view shows collected ones. The position
moves on keys or, while playing, on a timer that follows the recording's own times at the
chosen speed; the clock that timer reads is injectable, so tests drive playback exactly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import ClassVar

from textual.app import SystemCommand
from textual.binding import Binding, BindingType

from vramtop.config import Settings
from vramtop.history import History
from vramtop.model import Frame
from vramtop.record import Recording
from vramtop.tui.app import VramtopApp, help_sections, pick_theme
from vramtop.tui.messages import FramesDecoded
from vramtop.tui.replay_feed import Feed
from vramtop.tui.screens.help import entries
from vramtop.tui.themes import LoadedThemes
from vramtop.tui.view import View
from vramtop.tui.widgets.status_bar import ReplayPosition, Status

SPEEDS = (0.5, 1.0, 2.0, 5.0, 10.0, 60.0)
SEEK = 60.0  # seconds that [ and ] move
TICK = 0.1  # seconds between playback steps
GAP = 60.0  # a longer pause between frames (nothing was recording) plays as this long

_STEP = Binding.Group("Step", compact=True)
_SEEK = Binding.Group("±1 min", compact=True)
_ALERT = Binding.Group("Alert change", compact=True)
_SPEED = Binding.Group("Speed", compact=True)

COMMON_KEYS: list[BindingType] = [
    Binding("q", "quit", "Quit"),
    Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    Binding("question_mark", "help", "Help"),
    Binding("x", "snapshot", "Snapshot"),
    Binding("ctrl+p", "command_palette", "Palette", show=False),
]
# Printable keys only: arrows, home/end, g/G, j/k and 1-4 belong to the lists and drill-downs.
REPLAY_KEYS: list[BindingType] = [
    Binding("space", "play", "Play/pause"),
    Binding("p", "play", "Play/pause", show=False),
    Binding("comma", "step(-1)", "Step back a frame", key_display=",", group=_STEP),
    Binding("full_stop", "step(1)", "Step forward a frame", key_display=".", group=_STEP),
    Binding("left_square_bracket", "seek(-1)", "Back 1 minute", key_display="[", group=_SEEK),
    Binding("right_square_bracket", "seek(1)", "Forward 1 minute", key_display="]", group=_SEEK),
    Binding(
        "left_curly_bracket",
        "alert_change(-1)",
        "Previous alert change",
        key_display="{",
        group=_ALERT,
    ),
    Binding(
        "right_curly_bracket", "alert_change(1)", "Next alert change", key_display="}", group=_ALERT
    ),
    Binding("N", "alert_change(-1)", "Previous alert change", show=False),
    Binding("n", "alert_change(1)", "Next alert change", show=False),
    Binding("0", "go_start", "Start of the recording", show=False),
    Binding("dollar_sign", "go_end", "End of the recording", key_display="$", show=False),
    Binding("less_than_sign", "speed(-1)", "Slower", key_display="<", group=_SPEED),
    Binding("greater_than_sign", "speed(1)", "Faster", key_display=">", group=_SPEED),
]


class _NoCollector:
    """A replay collects nothing; nothing calls this (``start`` never starts the Poller)."""

    def collect(self) -> Frame:
        raise RuntimeError("a replay collects nothing")


class ReplayApp(VramtopApp, inherit_bindings=False):
    BINDINGS: ClassVar[list[BindingType]] = [*COMMON_KEYS, *REPLAY_KEYS]

    def __init__(
        self,
        settings: Settings,
        recording: Recording,
        start: int,
        *,
        themes: LoadedThemes,
        theme: str,
        monotonic: Callable[[], float] = time.monotonic,
        snapshot_dir: Path | None = None,
        cursor_blink: bool = True,
        notes: Iterable[str] = (),
    ) -> None:
        super().__init__(
            settings,
            _NoCollector(),
            themes=themes,
            theme=theme,
            history=History(),
            snapshot_dir=snapshot_dir,
            cursor_blink=cursor_blink,
            notes=notes,
        )
        self.recording = recording
        self.monotonic = monotonic
        self.position = start  # the frame asked for; shown_index once it is decoded
        self.shown_index: int | None = None
        self.history_end: int | None = None  # the last frame self.history holds
        self.playing = False
        self.speed = 1.0
        self._carry = 0.0  # recording seconds played but not yet used up by a frame
        self._played_at = 0.0
        self._feed = Feed(recording, lambda answer: self.post_message(FramesDecoded(answer)))

    @property
    def last(self) -> int:
        return len(self.recording) - 1

    def start(self) -> None:
        self._feed.request(self.position, None)
        self.set_interval(TICK, self.advance)

    def on_frames_decoded(self, message: FramesDecoded) -> None:
        d = message.decoded
        if d.error is not None:
            self.playing = False
            if self.shown_index is not None:
                self.position = self.shown_index
            self.notify(d.error, title="Replay", severity="error", timeout=10, markup=False)
            self.redraw_status()
            return
        if d.index != self.position:
            return  # a newer request is on its way
        if d.history is not None:
            self.history = d.history
        elif d.after != self.history_end:
            self._feed.request(self.position, self.history_end)
            return
        else:
            for frame in d.frames:
                self.history.add(frame)
        self.history_end = self.shown_index = d.index
        self.shown = self.latest = d.frames[-1]
        self.frames_received += 1
        self.redraw()

    def on_unmount(self) -> None:
        self._feed.stop()

    # -- moving ----------------------------------------------------------------------------

    def go(self, index: int) -> None:
        index = max(0, min(index, self.last))
        self._carry, self._played_at = 0.0, self.monotonic()
        if index != self.position:
            self.position = index
            self._feed.request(index, self.history_end)
        self.redraw_status()

    def advance(self) -> None:
        """While playing: on to the frames whose time has come at this speed."""
        if not self.playing:
            return
        now = self.monotonic()
        self._carry += (now - self._played_at) * self.speed
        self._played_at = now
        times, i = self.recording.times, self.position
        while i < self.last:
            # A clock stepped back plays as no time at all, a gap as at most GAP.
            step = min(max(times[i + 1] - times[i], 0.0), GAP)
            if step > self._carry:
                break
            self._carry -= step
            i += 1
        if i != self.position:
            self.position = i
            self._feed.request(i, self.history_end)
        if i == self.last:
            self.playing = False
            self.notify("End of the recording", timeout=3)
        self.redraw_status()

    def action_play(self) -> None:
        if not self.playing and self.position >= self.last:
            self.notify("At the end of the recording: 0 goes to its start", timeout=3)
            return
        self.playing = not self.playing
        self._carry, self._played_at = 0.0, self.monotonic()
        self.redraw_status()

    def action_pause(self) -> None:
        self.action_play()

    def action_step(self, delta: int) -> None:
        self.playing = False
        self.go(self.position + delta)

    def action_seek(self, direction: int) -> None:
        rec = self.recording
        target = rec.index_at(rec.times[self.position] + direction * SEEK)
        if target is None:
            target = 0
        elif direction > 0 and target <= self.position:
            target = self.position + 1  # a gap longer than the seek: never stuck before it
        self.go(target)

    def action_alert_change(self, direction: int) -> None:
        rec = self.recording
        if direction > 0:
            target = rec.index_of_next_alert_change(self.position)
        else:
            target = rec.index_of_previous_alert_change(self.position)
        if target is None:
            later = "later" if direction > 0 else "earlier"
            self.notify(f"No {later} change in the alerts", timeout=3)
            return
        self.go(target)

    def action_go_start(self) -> None:
        self.go(0)

    def action_go_end(self) -> None:
        self.go(self.last)

    def action_speed(self, direction: int) -> None:
        self.advance()  # what was played at the old speed counts at the old speed
        faster = [s for s in SPEEDS if s > self.speed]
        slower = [s for s in SPEEDS if s < self.speed]
        if direction > 0 and faster:
            self.speed = faster[0]
        elif direction < 0 and slower:
            self.speed = slower[-1]
        self.redraw_status()

    # -- drawing ---------------------------------------------------------------------------

    def view(self) -> View | None:
        if self.shown is None:
            return None
        # Ages (of alerts) are as they were at the frame's own time.
        return View(self.shown, self.history, self.settings.targets, self.palette, self.shown.time)

    def status(self) -> Status:
        shown = self.shown
        index = self.shown_index if self.shown_index is not None else self.position
        return Status(
            shown=shown,
            latest=shown,
            now=shown.time if shown else 0.0,
            interval=self.interval,
            paused=not self.playing,
            waiting_since=None,
            problem=None,
            palette=self.palette,
            replay=ReplayPosition(index, len(self.recording), self.playing, self.speed),
        )

    def key_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        rest = help_sections(self)[1:]
        replay = entries(self, REPLAY_KEYS)
        return [("Replay", replay), ("Everywhere", entries(self, COMMON_KEYS)), *rest]

    def own_commands(self) -> Iterable[SystemCommand]:
        yield SystemCommand("Play / pause", "Play the recording (space)", self.action_play)
        yield SystemCommand("Start", "Go to the first frame (0)", self.action_go_start)
        yield SystemCommand("End", "Go to the last frame ($)", self.action_go_end)
        yield SystemCommand(
            "Snapshot", "Write the frame as text and Markdown (x)", self.action_snapshot
        )


def build_replay_app(
    settings: Settings,
    recording: Recording,
    start: int,
    *,
    theme: str | None = None,
    env: Mapping[str, str] | None = None,
    snapshot_dir: Path | None = None,
    cursor_blink: bool = True,
    monotonic: Callable[[], float] = time.monotonic,
) -> ReplayApp:
    """The replay's factory for the CLI and the tests; starts paused at frame ``start``. The
    caller closes ``recording``. ConfigError for an unknown theme."""
    themes, chosen, notes = pick_theme(settings, theme, os.environ if env is None else env)
    return ReplayApp(
        settings,
        recording,
        start,
        themes=themes,
        theme=chosen,
        monotonic=monotonic,
        snapshot_dir=snapshot_dir,
        cursor_blink=cursor_blink,
        notes=notes,
    )
