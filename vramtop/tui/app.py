"""The live view: one app over the same collector and Frames that ``--once`` uses.

The refresh loop: the Poller's thread runs ``collector.collect()``, appends the Frame to the
``--record`` file if there is one, and posts FrameCollected.
The handler stores the Frame in history, draws it (unless paused), and only then schedules the
next collection with ``set_timer``, so refreshes never overlap and a slow source only slows the
loop down. Keys are handled on the UI thread, which never waits on I/O.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer

from vramtop import redact
from vramtop.clean import one_line
from vramtop.config import ConfigError, Settings
from vramtop.history import History, Point
from vramtop.model import Frame
from vramtop.tui.messages import (
    BackfillReady,
    BackfillWanted,
    CollectFailed,
    FrameCollected,
    OpenGpu,
    OpenModel,
    RecordProblem,
    RedrawWanted,
    SnapshotWritten,
)
from vramtop.tui.palette import Palette
from vramtop.tui.poller import Poller, run_detached
from vramtop.tui.screens.base import LiveScreen
from vramtop.tui.screens.drill import DrillScreen
from vramtop.tui.screens.gpu import GpuScreen
from vramtop.tui.screens.help import EXTRA_LIST_KEYS, HelpScreen, entries
from vramtop.tui.screens.model import SERIES, ModelScreen
from vramtop.tui.screens.overview import OverviewScreen
from vramtop.tui.snapshot import write_snapshot
from vramtop.tui.themes import DEFAULT_THEME, NO_COLOR_THEME, LoadedThemes, load_themes
from vramtop.tui.view import View
from vramtop.tui.widgets.frame_table import FrameTable
from vramtop.tui.widgets.status_bar import Status

if TYPE_CHECKING:
    from vramtop.record import Recorder

# The live view redraws after every collection; faster than this costs CPU for no insight.
MIN_INTERVAL = 0.5
INTERVAL_STEPS = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 30.0, 60.0)
_INTERVAL = Binding.Group("Interval", compact=True)


class VramtopApp(App[None]):
    CSS_PATH = "vramtop.tcss"
    TITLE = "vramtop"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help"),
        Binding("p", "pause", "Pause"),
        Binding("r", "refresh_now", "Refresh", show=False),
        Binding(
            "plus,equals_sign",
            "slower",
            "Slower refresh",
            key_display="+",
            group=_INTERVAL,
            show=False,
        ),
        Binding("minus", "faster", "Faster refresh", key_display="-", group=_INTERVAL, show=False),
        Binding("x", "snapshot", "Snapshot"),
        Binding("ctrl+p", "command_palette", "Palette", show=False),
    ]

    def __init__(
        self,
        settings: Settings,
        collector: Any,
        *,
        themes: LoadedThemes,
        theme: str,
        history: History | None = None,
        clock: Callable[[], float] = time.time,
        snapshot_dir: Path | None = None,
        cursor_blink: bool = True,
        notes: Iterable[str] = (),
        recorder: Recorder | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.collector = collector
        self.history = history if history is not None else History()
        self.clock = clock
        self.snapshot_dir = snapshot_dir
        self.cursor_blink = cursor_blink
        self.interval = max(MIN_INTERVAL, settings.interval)
        self.paused = False
        self.shown: Frame | None = None  # on screen; frozen while paused
        self.latest: Frame | None = None
        self.problem: str | None = None
        self.frames_received = 0
        self.recorder = recorder  # --record; whoever opened it closes it
        self.record_problem: str | None = None
        self._record_failing: str | None = None  # the poller thread's own copy
        self._timer: Timer | None = None
        self._again = False
        self._notes = list(notes)
        self._poller = Poller(collector.collect, self._deliver, self._fail)
        if settings.no_color and not self.no_color:
            self._monochrome()
        for t in themes.themes.values():
            self.register_theme(t)
        self.theme = theme
        self.palette = self._make_palette()

    # -- the refresh loop ------------------------------------------------------------------

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.push_screen(OverviewScreen())
        for note in self._notes:
            self.notify(note, severity="warning", timeout=8, markup=False)
        self.start()

    def start(self) -> None:
        """Starts feeding Frames (a replay overrides it: Textual runs every class's on_mount)."""
        self._start_collection()
        self.set_interval(1.0, self._tick)

    def _deliver(self, frame: Frame) -> None:  # poller thread
        if self.recorder is not None:
            self._record(self.recorder, frame)
        self.post_message(FrameCollected(frame))

    def _record(self, recorder: Recorder, frame: Frame) -> None:  # poller thread, not the UI's
        try:
            recorder.append(frame)
        except Exception as err:  # RecordingError: one sentence; the next append tries again
            reason = one_line(err)
            if reason != self._record_failing:
                self.post_message(RecordProblem(reason))
            self._record_failing = reason
        else:
            if self._record_failing is not None:
                self.post_message(RecordProblem(None))
            self._record_failing = None

    def _fail(self, reason: str) -> None:  # poller thread
        self.post_message(CollectFailed(reason))

    def _start_collection(self) -> None:
        self._timer = None
        self._poller.request(self.clock())

    def _schedule_next(self) -> None:
        # One timer at most, even when Frames are also posted from elsewhere (a replay, a
        # benchmark); while a collection runs, its own Frame schedules the next one.
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self._poller.busy:
            return
        if self._again:
            self._again = False
            self._start_collection()
        else:
            self._timer = self.set_timer(self.interval, self._start_collection)

    def on_frame_collected(self, message: FrameCollected) -> None:
        frame = message.frame
        self.history.add(frame)
        self.latest = frame
        self.problem = None
        self.frames_received += 1
        if not self.paused:
            self.shown = frame
            self.redraw()
        else:
            self.redraw_status()
        self._schedule_next()

    def on_record_problem(self, message: RecordProblem) -> None:
        self.record_problem = message.reason
        if message.reason is not None:
            self.notify(
                message.reason, title="Recording failed", severity="error", timeout=10, markup=False
            )
        else:
            path = self.recorder.path if self.recorder is not None else ""
            self.notify(f"Recording to {path} again", timeout=3, markup=False)
        self.redraw_status()

    def on_collect_failed(self, message: CollectFailed) -> None:
        self.problem = message.reason
        self.redraw_status()
        self._schedule_next()

    def _tick(self) -> None:
        self.redraw_status()

    @property
    def collecting(self) -> bool:
        return self._poller.busy

    @property
    def collections_started(self) -> int:
        return self._poller.started

    # -- drawing ---------------------------------------------------------------------------

    def view(self) -> View | None:
        if self.shown is None:
            return None
        return View(self.shown, self.history, self.settings.targets, self.palette, self.clock())

    def live_screen(self) -> LiveScreen | None:
        for screen in reversed(self.screen_stack):
            if isinstance(screen, LiveScreen):
                return screen
        return None

    def redraw(self, screen: Screen | None = None) -> None:
        target = screen if isinstance(screen, LiveScreen) else self.live_screen()
        if target is None or not self._drawable(target):
            return
        view = self.view()
        if view is not None:
            target.show_view(view)
        target.show_status(self.status())

    def redraw_status(self) -> None:
        target = self.live_screen()
        if target is not None and self._drawable(target):
            target.show_status(self.status())

    def _drawable(self, screen: Screen) -> bool:
        # A Frame can arrive while the app or the screen is being torn down.
        return not self._exit and screen.is_attached and not screen._closing

    def status(self) -> Status:
        return Status(
            shown=self.shown,
            latest=self.latest,
            now=self.clock(),
            interval=self.interval,
            paused=self.paused,
            waiting_since=self._poller.busy_since if self._poller.busy else None,
            problem=self.problem,
            palette=self.palette,
            slow_after=self.settings.timeout + 1.0,
            recording=self.recorder.path if self.recorder is not None else None,
            record_problem=self.record_problem,
        )

    # -- themes ----------------------------------------------------------------------------

    def _make_palette(self) -> Palette:
        mono = self.no_color or self.theme == NO_COLOR_THEME
        return Palette.from_variables(self.get_css_variables(), mono=mono)

    def _theme_changed(self, _: object) -> None:
        self.palette = self._make_palette()
        for screen in self.screen_stack:
            if isinstance(screen, LiveScreen):
                self.redraw(screen)

    def _monochrome(self) -> None:
        from textual.filter import Monochrome

        self.no_color = True
        self._filters.append(Monochrome())

    # -- actions ---------------------------------------------------------------------------

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        self.push_screen(HelpScreen(self.key_sections()))

    def key_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        return help_sections(self)

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self.shown = self.latest
            self.redraw()
            self.notify("Resumed", timeout=2)
        else:
            self.redraw_status()
            self.notify("Paused: the screen is frozen; data is still collected", timeout=3)

    def action_refresh_now(self) -> None:
        if self._poller.busy:
            self._again = True  # right after the running one, never alongside it
            return
        if self._timer is not None:
            self._timer.stop()
        self._start_collection()

    def set_interval_seconds(self, seconds: float) -> None:
        self.interval = max(MIN_INTERVAL, seconds)
        if self._timer is not None:  # waiting for the next tick: reschedule from now
            self._timer.stop()
            self._timer = self.set_timer(self.interval, self._start_collection)
        self.redraw_status()

    def action_slower(self) -> None:
        bigger = [s for s in INTERVAL_STEPS if s > self.interval + 1e-9]
        self.set_interval_seconds(bigger[0] if bigger else self.interval)
        self.notify(f"Refresh every {self.interval:g} s", timeout=2)

    def action_faster(self) -> None:
        smaller = [s for s in INTERVAL_STEPS if s < self.interval - 1e-9]
        self.set_interval_seconds(smaller[-1] if smaller else MIN_INTERVAL)
        self.notify(f"Refresh every {self.interval:g} s", timeout=2)

    def action_snapshot(self) -> None:
        frame = self.shown or self.latest
        if frame is None:
            self.notify("Nothing to snapshot yet: no data has arrived", severity="warning")
            return
        directory = self.snapshot_dir or Path.cwd()

        def job() -> None:
            try:
                paths = write_snapshot(frame, directory)
            except OSError as err:
                reason = f"cannot write a snapshot in {directory}: {err.strerror or err}"
                self.post_message(SnapshotWritten((), reason))
            else:
                self.post_message(SnapshotWritten(paths))

        run_detached(job, "vramtop-snapshot")

    def on_snapshot_written(self, message: SnapshotWritten) -> None:
        if message.error:
            self.notify(
                message.error, title="Snapshot failed", severity="error", timeout=10, markup=False
            )
            return
        txt, md = message.paths
        self.notify(f"{txt}\n{md.name}", title="Snapshot written", timeout=10, markup=False)

    # -- drill-downs -----------------------------------------------------------------------

    def on_open_gpu(self, message: OpenGpu) -> None:
        self.push_screen(GpuScreen(message.index))

    def on_open_model(self, message: OpenModel) -> None:
        backfills = getattr(self.collector, "backfill", None) is not None
        self.push_screen(ModelScreen(message.name, backfills))

    def on_redraw_wanted(self, message: RedrawWanted) -> None:
        self.redraw(message.screen)  # type: ignore[arg-type]

    def on_backfill_wanted(self, message: BackfillWanted) -> None:
        """History from the collector's backfill (Prometheus), off-thread."""
        screen, model, window = message.requester, message.model, message.window
        backfill = self.collector.backfill

        def job() -> None:
            try:
                raw = backfill(model, window)
                series = {
                    name: _finite(points) for name, points in dict(raw).items() if name in SERIES
                }
            except Exception as err:
                screen.post_message(BackfillReady(model, window, {}, one_line(err)))
            else:
                screen.post_message(BackfillReady(model, window, series))

        run_detached(job, "vramtop-backfill")

    # -- command palette -------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from self.own_commands()
        for name in sorted(self.available_themes):
            if name.startswith("vramtop-"):
                yield SystemCommand(
                    f"Theme: {name}", "Switch to this theme", _setter(self, "theme", name)
                )

    def own_commands(self) -> Iterable[SystemCommand]:
        """The palette's commands for this mode (a replay has its own)."""
        yield SystemCommand("Pause / resume", "Freeze the screen (p)", self.action_pause)
        yield SystemCommand("Refresh now", "Collect a frame now (r)", self.action_refresh_now)
        yield SystemCommand(
            "Snapshot", "Write the frame as text and Markdown (x)", self.action_snapshot
        )
        yield SystemCommand("Refresh slower", "Longer interval (+)", self.action_slower)
        yield SystemCommand("Refresh faster", "Shorter interval (-)", self.action_faster)

    def on_unmount(self) -> None:
        self._poller.stop()


def _setter(obj: object, attr: str, value: object) -> Callable[[], None]:
    return lambda: setattr(obj, attr, value)


def _finite(points: Iterable[Any]) -> list[Point]:
    out: list[Point] = []
    for t, v in points:
        t, v = float(t), float(v)
        if math.isfinite(t) and math.isfinite(v):
            out.append((t, v))
    return out


def help_sections(app: App) -> list[tuple[str, list[tuple[str, str]]]]:
    return [
        ("Everywhere", entries(app, VramtopApp.BINDINGS)),
        (
            "Lists (GPUs, models, processes, alerts)",
            [*EXTRA_LIST_KEYS, *entries(app, FrameTable.BINDINGS)],
        ),
        ("Overview", entries(app, OverviewScreen.BINDINGS)),
        ("Model and GPU drill-downs", entries(app, DrillScreen.BINDINGS)),
        ("Filter line", [("enter", "Keep the filter"), ("escape", "Clear the filter")]),
        ("This help", entries(app, HelpScreen.BINDINGS)),
    ]


def pick_theme(
    settings: Settings, theme: str | None, env: Mapping[str, str]
) -> tuple[LoadedThemes, str, list[str]]:
    """The themes, the one to start with, and notes to show. ConfigError for an unknown one."""
    themes = load_themes(env)
    notes = list(themes.problems)
    no_color = settings.no_color or bool(env.get("NO_COLOR"))
    chosen = theme or (NO_COLOR_THEME if no_color else DEFAULT_THEME)
    from textual.theme import BUILTIN_THEMES

    known = {**BUILTIN_THEMES, **themes.themes}
    if chosen not in known:
        if theme is not None:
            # Blame the layer it came from: --theme, VRAMTOP_THEME or the config file's key.
            where = settings.theme_source if theme == settings.theme else "--theme"
            names = ", ".join(sorted(n for n in known if n.startswith("vramtop-")) or known)
            shown = redact.cut(repr(redact.text(theme)), 80)
            raise ConfigError(f"{where}: unknown theme {shown} (known: {names}, or Textual's)")
        notes.append(f"theme {chosen!r} was not found; using textual-dark")
        chosen = "textual-dark"
    return themes, chosen, notes


def build_app(
    settings: Settings,
    collector: Any,
    *,
    theme: str | None = None,
    env: Mapping[str, str] | None = None,
    history: History | None = None,
    clock: Callable[[], float] = time.time,
    snapshot_dir: Path | None = None,
    cursor_blink: bool = True,
    recorder: Recorder | None = None,
) -> VramtopApp:
    """The one factory for the CLI and the tests. ConfigError for an unknown theme.
    ``recorder`` (``--record``) gets every collected Frame; the caller closes it."""
    env = os.environ if env is None else env
    themes, chosen, notes = pick_theme(settings, theme, env)
    if settings.interval < MIN_INTERVAL:
        notes.append(
            f"Refresh interval raised to {MIN_INTERVAL:g} s, the live view's minimum "
            f"(asked for {settings.interval:g} s)"
        )
    return VramtopApp(
        settings,
        collector,
        themes=themes,
        theme=chosen,
        history=history,
        clock=clock,
        snapshot_dir=snapshot_dir,
        cursor_blink=cursor_blink,
        notes=notes,
        recorder=recorder,
    )
