"""Messages that carry results from background threads to the UI thread."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from textual.message import Message
from textual.message_pump import MessagePump

from vramtop.history import Point
from vramtop.model import Frame

if TYPE_CHECKING:
    from vramtop.tui.replay_feed import Decoded


@dataclass
class FrameCollected(Message):
    """A new Frame; a newer one replaces one still waiting in the queue."""

    frame: Frame

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, FrameCollected)


@dataclass
class CollectFailed(Message):
    """collect() raised (it should not): the reason, so the loop can go on."""

    reason: str


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
class RecordProblem(Message):
    """``--record``: a write failed (the reason), or, with None, writes work again."""

    reason: str | None


@dataclass
class FramesDecoded(Message):
    """Replay: the decoding thread's answer to a request."""

    decoded: Decoded


# Screens ask, the app acts: a screen never calls into the app, so neither imports the other.


@dataclass
class OpenGpu(Message):
    """Open a GPU's drill-down."""

    index: int


@dataclass
class OpenModel(Message):
    """Open a model's drill-down."""

    name: str


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
