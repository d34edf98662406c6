"""The modes that run until stopped (``--headless``, ``--serve-metrics``) share one way to stop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


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
