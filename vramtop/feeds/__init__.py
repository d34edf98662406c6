"""Where the live view's Frames come from: a feed. The app consumes one and never builds a Frame.

- :class:`~vramtop.feeds.live.LiveFeed`: the collector, run on its own worker at an interval;
- :class:`~vramtop.feeds.recorded.Recorded`: any feed whose Frames are also appended to a
  recording (the live view's ``--record`` and ``--headless`` share it);
- :class:`~vramtop.feeds.replay.ReplayFeed`: a recording's Frames, decoded off the UI thread and
  moved by a playback clock.

A feed talks to its consumer only through ``post``, from its own threads, with the messages
below; the consumer (the Textual app, the headless recorder) decides what to do with them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Literal, Protocol

from vramtop.history import History, Point
from vramtop.model import Frame
from vramtop.records import record

Kind = Literal["live", "replay"]


@record(slots=False)
class Arrived:
    """Frames for the consumer: show ``frame``; add ``added`` to the History, or, when
    ``history`` is set, replace the History with it (it already holds ``frame``). A live frame
    may be replaced by a newer one still waiting to be handled; a replay's may not (each one
    continues the History from the one before)."""

    frame: Frame
    added: tuple[Frame, ...] = ()
    history: History | None = None
    replaceable: bool = False


@record(slots=False)
class Trouble:
    """``kind``: ``collect`` (collect() raised), ``record`` (a write failed) or ``replay`` (a
    frame could not be decoded). ``reason`` None: it works again."""

    kind: str
    reason: str | None


@record(slots=False)
class Position:
    """Where a replay is: the frame shown (or asked for), of how many, playing at what speed."""

    index: int
    count: int
    playing: bool
    speed: float


@record(slots=False)
class FeedStatus:
    interval: float  # seconds between frames (a replay: the recording's own)
    waiting_since: float | None = None  # a frame is being collected since then
    recording: str | None = None  # frames are also written to this file
    replay: Position | None = None
    remote_interval: float | None = None  # Prometheus and Alertmanager are read this often
    paused_every: float | None = None  # the screen is paused, and frames come this often


Message = Arrived | Trouble
Post = Callable[[Message], object]
Backfill = Callable[[str, float], Mapping[str, list[Point]]]


class Feed(Protocol):
    kind: Kind
    # The commands ``run`` takes (bound to keys by the consumer): "refresh", "slower",
    # "faster"; "pause" when the feed pauses itself (a replay) rather than the screen freezing.
    commands: frozenset[str]
    tick_every: float | None  # how often the consumer calls ``tick`` (None: never)

    def start(self, post: Post) -> None: ...

    def stop(self) -> None: ...

    def tick(self) -> str | None:
        """The consumer's clock moved on (every ``tick_every`` s); a sentence to tell, if any."""
        ...

    def run(self, command: str, arg: int = 0) -> str | None:
        """Do a command; the sentence to tell the user, if any."""
        ...

    def screen_paused(self, paused: bool) -> float | None:
        """The consumer froze (or thawed) its screen: the feed may collect less often meanwhile.
        The seconds between frames while paused, or None where the pace does not change."""
        ...

    def status(self) -> FeedStatus: ...

    @property
    def backfill(self) -> Backfill | None:
        """A model's recent history from a source that keeps it, or None."""
        ...
