"""The cyclic garbage collector held off while a source reads a large answer.

Reading a 1000-host fleet's answers allocates millions of objects that live on (the Frame's
readings): the collector's generational passes, triggered every few hundred allocations, kept
re-walking them, a fifth to a third of a refresh's CPU (bench/fleet_cpu.py replay). Objects
are still freed by reference counting meanwhile; cycles wait for the next pass after the read.
Process-wide, so nested and concurrent holders count: the last one out restores the state.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_was_enabled = False


@contextmanager
def held() -> Iterator[None]:
    global _holders, _was_enabled
    with _lock:
        if _holders == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _was_enabled:
                gc.enable()
