"""The live view: one app over a feed of Frames (vramtop.feeds): the live collector, the same
with every Frame recorded, or a recording replayed. The app builds no Frame itself.

A feed posts from its own threads; the app turns what it posts into Messages, and on the UI
thread stores each Frame in history and draws it (unless paused). Keys are handled on the UI
thread, which never waits on I/O; a key that belongs to the feed (refresh, step, seek...) is
passed to it as a command.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App, SystemCommand
from textual.binding import BindingType
from textual.driver import Driver
from textual.screen import Screen

from vramtop.actions import Outcome
from vramtop.config import Settings
from vramtop.feeds import Arrived, Feed, Message, Trouble
from vramtop.fleet import Rules, is_fleet
from vramtop.history import History
from vramtop.model import Frame
from vramtop.tui import acting, cells, commands, keys, linking
from vramtop.tui.jobs import backfill_job, run_job, snapshot_job
from vramtop.tui.messages import (
    BackfillWanted,
    FeedTrouble,
    FrameCollected,
    OpenGpu,
    OpenHost,
    OpenModel,
    RedrawWanted,
    SignalSent,
    SnapshotWritten,
)
from vramtop.tui.palette import Palette
from vramtop.tui.screens.base import LiveScreen
from vramtop.tui.screens.overview import OverviewScreen

# The other screens (drill-downs, Hosts, help, silences) and their widgets are imported when
# one opens: a live view that shows only the overview never holds their modules in memory.
from vramtop.tui.themes import NO_COLOR_THEME, LoadedThemes
from vramtop.tui.view import View
from vramtop.tui.widgets.model_table import auto_columns
from vramtop.tui.widgets.process_table import ProcessTable
from vramtop.tui.widgets.status_bar import Status

STATUS_TICK = 1.0  # seconds between status-line refreshes (ages, "collecting for ...")


class VramtopApp(App[None]):
    CSS_PATH = "vramtop.tcss"
    TITLE = "vramtop"
    BINDINGS: ClassVar[list[BindingType]] = [
        *keys.COMMON_KEYS,
        *keys.LIVE_KEYS,
        *keys.LAST_KEYS,
        *keys.REPLAY_KEYS,
        *keys.FLEET_KEYS,
        *keys.SILENCE_KEYS,
    ]

    def __init__(
        self,
        settings: Settings,
        feed: Feed,
        *,
        themes: LoadedThemes,
        theme: str,
        history: History | None = None,
        clock: Callable[[], float] = time.time,
        snapshot_dir: Path | None = None,
        cursor_blink: bool = True,
        notes: Iterable[str] = (),
        silences: Any = None,
        painted: bool = False,
    ) -> None:
        """``silences``: the Alertmanager silence client (vramtop.sources.silences), or None.
        ``painted``: started over the first paint, on the alternate screen already."""
        self.painted = painted
        super().__init__()
        self.settings = settings
        self.silences = silences
        self.feed = feed
        self.history = history if history is not None else History()
        self.clock = clock
        self.snapshot_dir = snapshot_dir
        self.cursor_blink = cursor_blink
        self.paused = False  # the screen is frozen (a feed that cannot pause itself)
        self.shown: Frame | None = None  # on screen; frozen while paused
        self.latest: Frame | None = None
        self.problem: str | None = None  # the last collection failure
        self.record_problem: str | None = None
        self.frames_received = 0
        self.fleet_start: bool | None = None  # the first frame held several hosts
        # The Models table's columns: the config's, changed from the palette; None: automatic
        self.model_columns: tuple[str, ...] | None = settings.columns
        self._notes = list(notes)
        self.acted: tuple[Outcome, float] | None = None  # the last signal's outcome, and when
        if settings.no_color and not self.no_color:
            self._monochrome()
        for t in themes.themes.values():
            self.register_theme(t)
        self.theme = theme
        self.palette = self._make_palette()

    def get_driver_class(self) -> type[Driver]:
        driver = super().get_driver_class()
        if not self.painted:
            return driver
        from vramtop.tui.takeover import takeover

        return takeover(driver)

    # -- the feed ----------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.push_screen(OverviewScreen())
        for note in self._notes:
            self.notify(note, severity="warning", timeout=8, markup=False)
        self.feed.start(self._post)
        # Paused, the status line says nothing that ages: this tick stops with it.
        self._status_tick = self.set_interval(STATUS_TICK, self.redraw_status)
        if self.feed.tick_every:
            self.set_interval(self.feed.tick_every, self.tick)

    def _post(self, m: Message) -> None:  # the feed's threads
        if isinstance(m, Arrived):
            self.post_message(FrameCollected(m.frame, m.added, m.history, m.replaceable))
        else:
            self.post_message(FeedTrouble(m))

    def on_frame_collected(self, message: FrameCollected) -> None:
        if message.history is not None:
            self.history = message.history
        for frame in (message.frame,) if message.added is None else message.added:
            self.history.add(frame)
        self.latest = message.frame
        self.problem = None
        self.frames_received += 1
        if self.fleet_start is None:  # decided once: screens never flip under the user
            self.fleet_start = is_fleet(message.frame)
            if self.fleet_start and type(self.screen) is OverviewScreen:
                from vramtop.tui.screens.hosts import HostsScreen

                self.push_screen(HostsScreen())
        if not self.paused:
            self.shown = message.frame
            self.redraw()
        else:
            self.redraw_status()

    def on_feed_trouble(self, message: FeedTrouble) -> None:
        trouble: Trouble = message.trouble
        if trouble.kind == "collect":
            self.problem = trouble.reason
        elif trouble.kind == "record":
            self.record_problem = trouble.reason
            if trouble.reason is not None:
                self.notify(trouble.reason, title="Recording failed", severity="error", timeout=10)
            else:
                self.notify(f"Recording to {self.feed.status().recording} again", timeout=3)
        elif trouble.reason is not None:
            self.notify(trouble.reason, title="Replay", severity="error", timeout=10)
        self.redraw_status()

    def tick(self) -> None:
        """The feed's clock (a replay's playback) moves on."""
        self._say(self.feed.tick())
        self.redraw_status()

    def action_feed(self, command: str, arg: int = 0) -> None:
        self._say(self.feed.run(command, arg))
        self.redraw_status()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "hosts":  # not from under the help or the palette
            return isinstance(self.screen, LiveScreen)
        if action == "feed":
            return parameters[0] in self.feed.commands
        if action == "pause":  # the screen freezes only where the feed cannot pause itself
            return "pause" not in self.feed.commands
        if action in ("silence", "silences"):  # absent, not just refused, where it cannot be
            return self.can_silence and isinstance(self.screen, LiveScreen)
        return True

    def _say(self, note: str | None) -> None:
        if note:
            self.notify(note, timeout=3, markup=False)

    @property
    def collecting(self) -> bool:
        return self.feed.status().waiting_since is not None

    @property
    def replay(self) -> bool:
        return self.feed.kind == "replay"

    @property
    def may_act(self) -> bool:
        """Actions (signals, silences) exist: not read-only, not a replay."""
        return not self.settings.readonly and not self.replay

    @property
    def can_silence(self) -> bool:
        """Silences exist: the app may act and an Alertmanager is configured."""
        return self.may_act and self.silences is not None

    # -- drawing -----------------------------------------------------------------------------

    def view(self) -> View | None:
        if self.shown is None:
            return None
        # A replay's ages (of alerts) are as they were at the frame's own time.
        now = self.shown.time if self.replay else self.clock()
        return View(
            self.shown,
            self.history,
            self.settings.targets,
            self.palette,
            now,
            host_label=self.settings.host_label,
            model_columns=self.model_columns,
            links=self.settings.links,
            local_rules=bool(self.settings.rules) and not self.replay,
        )

    def toggle_model_column(self, key: str) -> None:
        """The palette's column entries: from the columns on screen, one more or one less."""
        shown = self.model_columns
        if shown is None:
            frame = self.shown or self.latest
            shown = auto_columns(frame.models if frame else ())
        self.model_columns = tuple(k for k in shown if k != key) if key in shown else (*shown, key)
        self.redraw()

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
        # A screen just pushed has no widgets until mounted; it asks itself (RedrawWanted).
        return not self._exit and screen.is_attached and screen.is_mounted and not screen._closing

    def status(self) -> Status:
        feed = self.feed.status()
        replay, shown = feed.replay, self.shown
        return Status(
            shown=shown,
            latest=shown if replay else self.latest,
            now=(shown.time if shown else 0.0) if replay else self.clock(),
            interval=feed.interval,
            remote_interval=feed.remote_interval,
            paused=not replay.playing if replay else self.paused,
            paused_every=feed.paused_every,
            waiting_since=feed.waiting_since,
            problem=self.problem,
            palette=self.palette,
            slow_after=self.settings.timeout + 1.0,
            recording=feed.recording,
            record_problem=self.record_problem,
            replay=replay,
            readonly=self.settings.readonly,  # a replay says REPLAY instead (no room for both)
            acted=acting.note(self),
        )

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

    # -- actions -----------------------------------------------------------------------------

    def action_help(self) -> None:
        from vramtop.tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss()
            return
        self.push_screen(HelpScreen(keys.help_sections(self, self.feed.kind)))

    def action_pause(self) -> None:
        """Freezes the screen; the feed may collect less often meanwhile (the history goes on,
        at that step). Resumed, the newest frame is drawn at once and a new one is collected."""
        self.paused = not self.paused
        every = self.feed.screen_paused(self.paused)
        if not self.paused:
            self._status_tick.resume()
            self.shown = self.latest
            self.redraw()
            self.notify("Resumed", timeout=2)
        else:
            self._status_tick.pause()
            self.redraw_status()
            pace = f"every {cells.interval(every)}" if every else "as before"
            self.notify(f"Paused: the screen is frozen; data is still read, {pace}", timeout=3)

    def action_snapshot(self) -> None:
        frame = self.shown or self.latest
        if frame is None:
            self.notify("Nothing to snapshot yet: no data has arrived", severity="warning")
            return
        directory = self.snapshot_dir or Path.cwd()
        rules = Rules(self.settings.targets.p95_for, self.settings.host_label)
        job = snapshot_job(frame, directory, self.post_message, rules, self.settings.links)
        run_job(job, "vramtop-snapshot")

    def action_copy_link(self) -> None:
        """The link of what is selected to the clipboard (OSC 52: it works over SSH); pressed
        again, the next of its links."""
        linking.copy_selected_link(self)

    def on_snapshot_written(self, message: SnapshotWritten) -> None:
        if message.error:
            self.notify(
                message.error, title="Snapshot failed", severity="error", timeout=10, markup=False
            )
            return
        txt, md = message.paths
        self.notify(f"{txt}\n{md.name}", title="Snapshot written", timeout=10, markup=False)

    # -- signals ---------------------------------------------------------------------------

    def on_process_table_signal_wanted(self, message: ProcessTable.SignalWanted) -> None:
        acting.ask(self, message.table, message.key, message.name)

    def signal_selected(self, name: str) -> Callable[[], None]:
        """A palette entry that signals the selected process (after confirmation)."""
        return lambda: acting.from_palette(self, name)

    def on_signal_sent(self, message: SignalSent) -> None:
        acting.show(self, message.outcome)

    # -- silences ---------------------------------------------------------------------------

    def action_silence(self) -> None:
        from vramtop.tui.screens.silence import SilenceForm
        from vramtop.tui.silence_target import author, silence_target

        found = silence_target(self.screen, self.focused)
        if isinstance(found, str):
            self.notify(found, severity="warning", timeout=5, markup=False)
            return
        matchers, about = found
        who = author(self.settings.silence_author)
        form = SilenceForm(self.silences, matchers, who, about)
        self.push_screen(form, self._silence_created)

    def _silence_created(self, silence_id: str | None) -> None:
        if silence_id:
            self.notify(f"Silence {silence_id} created", title="Silenced", markup=False)
            if "refresh" in self.feed.commands:
                self.action_feed("refresh")  # the alert shows silenced at once

    def action_silences(self) -> None:
        from vramtop.tui.screens.silences import SilencesScreen
        from vramtop.tui.silence_target import silence_scope

        relevant, about = silence_scope(self.screen)
        self.push_screen(SilencesScreen(self.silences, relevant, about))

    # -- drill-downs -------------------------------------------------------------------------

    def on_open_gpu(self, message: OpenGpu) -> None:
        from vramtop.tui.screens.gpu import GpuScreen

        self.push_screen(GpuScreen(message.index, message.host))

    def on_open_model(self, message: OpenModel) -> None:
        from vramtop.tui.screens.model import ModelScreen

        backfills = self.feed.backfill is not None
        self.push_screen(ModelScreen(message.name, backfills, message.host))

    def on_open_host(self, message: OpenHost) -> None:
        from vramtop.tui.screens.host import HostScreen

        # That host already open underneath (a replica of a model opened from it): back to it.
        if any(isinstance(s, HostScreen) and s.host == message.key for s in self.screen_stack):
            while not (isinstance(self.screen, HostScreen) and self.screen.host == message.key):
                self.pop_screen()
        else:
            self.push_screen(HostScreen(message.key))

    def action_hosts(self) -> None:
        """The Hosts screen: back to it where it is open underneath, else on top."""
        from vramtop.tui.screens.hosts import HostsScreen

        stack = self.screen_stack
        if any(isinstance(s, HostsScreen) for s in stack):
            while not isinstance(self.screen, HostsScreen):
                self.pop_screen()
        else:
            self.push_screen(HostsScreen())

    def on_redraw_wanted(self, message: RedrawWanted) -> None:
        self.redraw(message.screen)  # type: ignore[arg-type]

    def on_backfill_wanted(self, message: BackfillWanted) -> None:
        """History from the feed's backfill (Prometheus), off the UI thread."""
        screen, model, window = message.requester, message.model, message.window
        backfill = self.feed.backfill
        assert backfill is not None
        run_job(backfill_job(backfill, model, window, screen.post_message), "vramtop-backfill")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from commands.own(self)
        yield from commands.columns(self)
        yield from commands.themes(self)

    def command(self, name: str) -> Callable[[], None]:
        """A palette entry that runs a feed command."""
        return lambda: self.action_feed(name)

    def on_unmount(self) -> None:
        self.feed.stop()
