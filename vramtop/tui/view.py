"""What a screen is handed to draw: one Frame plus the history and settings around it."""

from __future__ import annotations

from dataclasses import dataclass

from vramtop.config import Targets
from vramtop.history import History
from vramtop.model import Frame
from vramtop.tui.palette import Palette


@dataclass(frozen=True)
class View:
    frame: Frame
    history: History
    targets: Targets
    palette: Palette
    now: float  # the wall clock when drawn (frame age, alert age)
