"""Messages that carry results from background threads to the UI thread."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual.message import Message
from textual.message_pump import MessagePump

from vramtop.actions import Outcome
from vramtop.feeds import Trouble
from vramtop.history import History, Point
from vramtop.model import Frame


@dataclass
class FrameCollected(Message):
    """A Frame from the feed to show. The History takes ``added`` (None: the frame alone), or
    is replaced by ``history``. A newer live frame replaces one still waiting; a replay's
    frames each continue the History, so none is dropped."""

    frame: Frame
    added: tuple[Frame, ...] | None = None
    history: History | None = None
    replaceable: bool = True

    def can_replace(self, message: Message) -> bool:
        return (
            self.replaceable
            and isinstance(message, FrameCollected)
            and message.replaceable
            and message.history is None
        )


@dataclass
class FeedTrouble(Message):
    """The feed could not collect, record or decode (or, with no reason, can again)."""

    trouble: Trouble


@dataclass
class BackfillReady(Message):
    """History for one model and window from the collector's backfill (e.g. Prometheus)."""

    model: str
    window: float
    series: dict[str, list[Point]]
    error: str | None = None


@dataclass
class SnapshotWritten(Message):
    paths: tuple[Path, ...]
    error: str | None = None


@dataclass
class SignalSent(Message):
    """What became of a confirmed signal (vramtop.actions.send), sent off the UI thread."""

    outcome: Outcome


# Screens ask, the app acts: a screen never calls into the app, so neither imports the other.


@dataclass
class OpenGpu(Message):
    """Open a GPU's drill-down. ``host``: the fleet host it is on (an index repeats across
    hosts); None: this machine, or a Frame of one host."""

    index: int
    host: str | None = None


@dataclass
class OpenModel(Message):
    """Open a model's drill-down; ``host``: as that host's replica."""

    name: str
    host: str | None = None


@dataclass
class OpenHost(Message):
    """Open one fleet host: the overview scoped to it."""

    key: str


@dataclass
class BackfillWanted(Message):
    """A model screen wants history for a window; the answer (BackfillReady, empty when no
    source keeps history) goes to ``requester``."""

    model: str
    window: float
    requester: MessagePump


@dataclass
class RedrawWanted(Message):
    """A screen came back on top and wants the current view and status."""

    screen: MessagePump
