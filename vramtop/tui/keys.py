"""The app's keys: those of every mode, the live feed's and the replay's, and the help built
from them. One app class holds them all; ``check_action`` keeps only what its feed can do."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import App
from textual.binding import Binding, BindingType

from vramtop.feeds.live import PAUSED_EVERY
from vramtop.tui.screens.overview import OverviewScreen
from vramtop.tui.widgets.frame_table import FrameTable
from vramtop.tui.widgets.process_table import ProcessTable

if TYPE_CHECKING:
    from vramtop.tui.screens.help import Entry

_INTERVAL = Binding.Group("Interval", compact=True)
_STEP = Binding.Group("Step", compact=True)
_SEEK = Binding.Group("±1 min", compact=True)
_ALERT = Binding.Group("Alert change", compact=True)
_SPEED = Binding.Group("Speed", compact=True)

COMMON_KEYS: list[BindingType] = [
    Binding("q", "quit", "Quit"),
    Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    Binding("question_mark", "help", "Help"),
]
# "pause" freezes the screen when the feed cannot pause itself (live: data is still read, slower).
LIVE_KEYS: list[BindingType] = [
    Binding("p", "pause", "Pause"),
    Binding("r", "feed('refresh')", "Refresh", show=False),
    Binding(
        "plus,equals_sign",
        "feed('slower')",
        "Slower refresh",
        key_display="+",
        group=_INTERVAL,
        show=False,
    ),
    Binding(
        "minus", "feed('faster')", "Faster refresh", key_display="-", group=_INTERVAL, show=False
    ),
]
LAST_KEYS: list[BindingType] = [
    Binding("x", "snapshot", "Snapshot"),
    Binding("c", "copy_link", "Copy the link of the selection", show=False),
    Binding("ctrl+p", "command_palette", "Palette", show=False),
]
# Printable keys only: arrows, home/end, g/G, j/k and 1-4 belong to the lists and drill-downs.
REPLAY_KEYS: list[BindingType] = [
    Binding("space", "feed('pause')", "Play/pause"),
    Binding("p", "feed('pause')", "Play/pause", show=False),
    Binding("comma", "feed('step', -1)", "Step back a frame", key_display=",", group=_STEP),
    Binding("full_stop", "feed('step', 1)", "Step forward a frame", key_display=".", group=_STEP),
    Binding(
        "left_square_bracket", "feed('seek', -1)", "Back 1 minute", key_display="[", group=_SEEK
    ),
    Binding(
        "right_square_bracket", "feed('seek', 1)", "Forward 1 minute", key_display="]", group=_SEEK
    ),
    Binding(
        "left_curly_bracket",
        "feed('alert_change', -1)",
        "Previous alert or health change",
        key_display="{",
        group=_ALERT,
    ),
    Binding(
        "right_curly_bracket",
        "feed('alert_change', 1)",
        "Next alert or health change",
        key_display="}",
        group=_ALERT,
    ),
    Binding("N", "feed('alert_change', -1)", "Previous alert or health change", show=False),
    Binding("n", "feed('alert_change', 1)", "Next alert or health change", show=False),
    Binding("0", "feed('go_start')", "Start of the recording", show=False),
    Binding("dollar_sign", "feed('go_end')", "End of the recording", key_display="$", show=False),
    Binding("less_than_sign", "feed('speed', -1)", "Slower", key_display="<", group=_SPEED),
    Binding("greater_than_sign", "feed('speed', 1)", "Faster", key_display=">", group=_SPEED),
]
# The fleet: open it from anywhere (it is the first screen when the first frame holds hosts).
FLEET_KEYS: list[BindingType] = [Binding("h", "hosts", "Hosts", show=False)]
# Alertmanager silences: only where the app may act and an Alertmanager is configured.
SILENCE_KEYS: list[BindingType] = [
    Binding("m", "silence", "Silence"),
    Binding("M", "silences", "Silences matching the view", show=False),
]
# The live view's own keys, in the order the footer shows them.
LIVE_VIEW_KEYS: list[BindingType] = [*COMMON_KEYS, *LIVE_KEYS, *LAST_KEYS]
REPLAY_VIEW_KEYS: list[BindingType] = [*COMMON_KEYS, *LAST_KEYS, *REPLAY_KEYS]


def help_sections(app: App, kind: str = "live") -> list[tuple[str, list[Entry]]]:
    # Imported when the help opens: the drill-downs are not loaded before one is opened.
    from vramtop.tui.screens.drill import DrillScreen
    from vramtop.tui.screens.help import EXTRA_LIST_KEYS, HelpScreen, entries

    lists = [
        (
            "Lists (GPUs, models, processes, alerts)",
            [*EXTRA_LIST_KEYS, *entries(app, FrameTable.BINDINGS)],
        ),
        ("Overview", entries(app, OverviewScreen.BINDINGS)),
        ("Model and GPU drill-downs", entries(app, DrillScreen.BINDINGS)),
        ("Filter line", [("enter", "Keep the filter"), ("escape", "Clear the filter")]),
        (
            "Fleet (Hosts screen, worst host first)",
            [
                *entries(app, FLEET_KEYS),
                ("⏎", "Open the host: its overview, GPUs and models"),
                ("⏎ on a replica", "Model drill-down: open that replica's host"),
                ("esc", "Back: a host to Hosts, Hosts to the overview of every host"),
            ],
        ),
        ("This help", entries(app, HelpScreen.BINDINGS)),
    ]
    if getattr(app, "may_act", False):  # absent read-only and in a replay
        signals = [
            *entries(app, ProcessTable.SIGNAL_KEYS),
            ("", "after a confirmation; y sends, Esc or n cancels"),
        ]
        lists.insert(1, ("Process rows (on this machine)", signals))
    if getattr(app, "can_silence", False):  # read-only, a replay or no Alertmanager: absent
        said = {
            "silence": "Silence the selected alert, or the model or GPU of a drill-down",
            "silences": "Silences matching the view; e expires the selected one",
        }
        silences = [
            (app.get_key_display(b), said[b.action]) for b in Binding.make_bindings(SILENCE_KEYS)
        ]
        lists.insert(-1, ("Silences (Alertmanager)", silences))
    if kind == "replay":
        everywhere = entries(app, [*COMMON_KEYS, *LAST_KEYS])
        return [("Replay", entries(app, REPLAY_KEYS)), ("Everywhere", everywhere), *lists]
    everywhere = entries(app, LIVE_VIEW_KEYS)
    paused = f"(paused: no redraw, data read every {PAUSED_EVERY:g} s)"
    at = next((i + 1 for i, (key, _) in enumerate(everywhere) if key == "p"), len(everywhere))
    everywhere.insert(at, ("", paused))
    return [("Everywhere", everywhere), *lists]
