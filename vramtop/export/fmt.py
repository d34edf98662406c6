"""The spaced rendering the exports and the detail panels write (``85 ms``, ``12.5 GiB``,
``n/a``), under the names they use; each quantity is formatted in vramtop/units.py."""

from __future__ import annotations

from datetime import UTC, datetime

from vramtop import units
from vramtop.units import NA, power, used_of

__all__ = ["NA", "fixed", "human_bytes", "mig", "num", "pct", "power", "seconds"]
__all__ += ["time_of_day", "used_of"]

fixed = units.figure
human_bytes = units.size
pct = units.percent
num = units.number
seconds = units.seconds


def mig(mode: bool | None) -> str:
    return NA if mode is None else ("on" if mode else "off")


def time_of_day(epoch: float | None) -> str:
    try:  # a NaN or far-off time from a server is n/a, not a crash
        return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%SZ")  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return NA


def date_time(epoch: float | None) -> str:
    """A day and minute in UTC, for what lasts longer than today (a silence's end)."""
    try:
        return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%MZ")  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError, OSError):
        return NA
