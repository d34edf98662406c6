"""What a screen is handed to draw: one Frame plus the history and settings around it."""

from __future__ import annotations

from dataclasses import replace

from vramtop import fleet
from vramtop.config import Targets
from vramtop.history import History
from vramtop.model import Frame
from vramtop.records import record
from vramtop.tui.palette import Palette


@record(slots=False)
class View:
    frame: Frame
    history: History
    targets: Targets
    palette: Palette
    now: float  # the wall clock when drawn (frame age, alert age)
    host_label: str | None = None  # settings.host_label: the label naming a fleet host
    host: str | None = None  # the fleet host ``frame`` is scoped to; None: the whole Frame
    whole: Frame | None = None  # the unscoped Frame, when scoped
    model_columns: tuple[str, ...] | None = None  # the Models table's; None: as the models have
    links: tuple[tuple[str, str], ...] = ()  # settings.links: [links] URL templates
    local_rules: bool = False  # settings.rules: vramtop evaluates alert rules itself

    @property
    def fleet_frame(self) -> Frame:
        """The Frame before any scoping: every host."""
        return self.whole or self.frame

    def scoped(self, key: str) -> View:
        """The same View as if vramtop ran on host ``key`` alone (vramtop.fleet.scope)."""
        whole = self.fleet_frame
        return replace(self, frame=fleet.scope(whole, key, self.host_label), host=key, whole=whole)

    def host_rows(self) -> list[fleet.HostRow]:
        """Every host, worst first: the one piece of code the exports also use."""
        return fleet_rows(self.fleet_frame, self.targets.p95_for, self.host_label)


_rows_cache: tuple[Frame, fleet.P95Target, str | None, list[fleet.HostRow]] | None = None


def fleet_rows(
    frame: Frame, target: fleet.P95Target, host_label: str | None
) -> list[fleet.HostRow]:
    """``fleet.host_rows`` for the Frame on screen, computed once per Frame (the Hosts screen
    and a host's screen both ask on every redraw)."""
    global _rows_cache
    cached = _rows_cache
    if cached is not None and cached[0] is frame and cached[1:3] == (target, host_label):
        return cached[3]
    rows = fleet.host_rows(frame, target, host_label)
    _rows_cache = (frame, target, host_label, rows)
    return rows
