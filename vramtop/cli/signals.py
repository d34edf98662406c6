"""The modes that run until stopped (``--headless``, ``--serve-metrics``) share one way to stop."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

# The main thread never blocks without a timeout: the kernel may hand a process's SIGINT to any
# of its threads, and a main thread asleep in a lock that nothing else wakes would never run
# the Python handler (seen under load: a recorder that ignored Ctrl-C).
TICK = 0.25


def wait(stop: threading.Event, seconds: float | None = None) -> bool:
    """``stop.wait(seconds)`` that wakes every TICK to let the main thread run signal handlers."""
    deadline = None if seconds is None else time.monotonic() + seconds
    while not stop.is_set():
        left = TICK if deadline is None else min(TICK, deadline - time.monotonic())
        if left <= 0:
            break
        stop.wait(left)
    return stop.is_set()


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """An Event that SIGINT or SIGTERM sets while inside (the mode then ends cleanly, exit 0);
    the previous handlers come back on the way out."""
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
