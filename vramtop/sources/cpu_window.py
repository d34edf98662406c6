"""The host's CPU % over a window between two snapshots of its CPU times.

psutil.cpu_percent(interval=None) keeps its last snapshot per thread (psutil 7.2, as pinned), so
a window started in one thread and read in another (the host source's worker) measured nothing
and said 0.0 %. Here a window is two explicit snapshots, and the command line starts the first
one as soon as it knows a local mode will run: by the time the host source is polled the
imports, the config and the NVML reads have filled the window, and a one-shot run never sleeps
for it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from vramtop.sources import procfs

_early: tuple[float, Any] | None = None
_lock = threading.Lock()


def start_early() -> None:
    """Open the process's first window now; the first HostSource takes it over."""
    global _early
    with _lock:
        if _early is None:
            _early = snapshot()


def take_early() -> tuple[float, Any]:
    """The window opened by start_early (once), else a new one opened now."""
    global _early
    with _lock:
        early, _early = _early, None
    return early or snapshot()


def snapshot() -> tuple[float, Any]:
    """(monotonic seconds, the host's CPU times) now: /proc/stat, or psutil without /proc."""
    if procfs.AVAILABLE:
        return time.monotonic(), procfs.cpu_times()
    import psutil

    return time.monotonic(), psutil.cpu_times()


def busy_percent(before: Any, after: Any) -> float:
    """Busy share of all CPU time between two cpu_times() snapshots, as psutil.cpu_percent
    computes it: guest time is already in user time on Linux, idle and iowait are not busy."""
    delta = {f: max(0.0, getattr(after, f) - getattr(before, f)) for f in after._fields}
    total = sum(delta.values()) - delta.get("guest", 0.0) - delta.get("guest_nice", 0.0)
    busy = total - delta["idle"] - delta.get("iowait", 0.0)
    if total <= 0:
        return 0.0
    return round(min(max(0.0, 100.0 * busy / total), 100.0), 1)
