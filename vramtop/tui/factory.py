"""The app's factories for the CLI, the tests and the benchmark: the live view over a collector
(optionally recording every Frame), and the replay of a recording. Both are the one app class
over a different feed."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from vramtop import redact
from vramtop.config import ConfigError, Settings
from vramtop.feeds.live import MIN_INTERVAL, Collects, LiveFeed
from vramtop.history import History
from vramtop.tui.app import VramtopApp
from vramtop.tui.themes import DEFAULT_THEME, NO_COLOR_THEME, LoadedThemes, load_themes

if TYPE_CHECKING:
    from vramtop.feeds.recorded import Recorded
    from vramtop.record import Recorder, Recording


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
    collector: Collects,
    *,
    theme: str | None = None,
    env: Mapping[str, str] | None = None,
    history: History | None = None,
    clock: Callable[[], float] = time.time,
    snapshot_dir: Path | None = None,
    cursor_blink: bool = True,
    recorder: Recorder | None = None,
    painted: bool = False,
) -> VramtopApp:
    """The live view. ``recorder`` (``--record``) gets every collected Frame; the app's feed
    closes it when the app ends. ``painted``: the first paint is on the screen (it takes the
    alternate screen as it is). ConfigError for an unknown theme."""
    env = os.environ if env is None else env
    themes, chosen, notes = pick_theme(settings, theme, env)
    if settings.interval < MIN_INTERVAL:
        notes.append(
            f"Refresh interval raised to {MIN_INTERVAL:g} s, the live view's minimum "
            f"(asked for {settings.interval:g} s)"
        )
    live = LiveFeed(collector, settings.interval, clock=clock)
    if recorder is None:
        feed: LiveFeed | Recorded = live
    else:
        from vramtop.feeds.recorded import Recorded  # imported only when recording (start-up)

        feed = Recorded(live, recorder)
    return VramtopApp(
        settings,
        feed,
        themes=themes,
        theme=chosen,
        history=history,
        clock=clock,
        snapshot_dir=snapshot_dir,
        cursor_blink=cursor_blink,
        silences=getattr(collector, "silences", None),
        notes=notes,
        painted=painted,
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
) -> VramtopApp:
    """The replay, paused at frame ``start``. The caller closes ``recording``. ConfigError for
    an unknown theme."""
    themes, chosen, notes = pick_theme(settings, theme, os.environ if env is None else env)
    from vramtop.feeds.replay import ReplayFeed

    interval = max(MIN_INTERVAL, settings.interval)
    return VramtopApp(
        settings,
        ReplayFeed(recording, start, interval, monotonic),
        themes=themes,
        theme=chosen,
        snapshot_dir=snapshot_dir,
        cursor_blink=cursor_blink,
        notes=notes,
    )
