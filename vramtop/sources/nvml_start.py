"""NVML's start (importing pynvml, nvmlInit) on a thread of its own.

The command line starts it as soon as it knows a local mode will run, beside the CPU window
(cpu_window): the driver's initialisation, which takes tens to hundreds of milliseconds on a
real multi-GPU host, then overlaps the imports and the config instead of following them. The
first NvmlSource takes the started NVML over; a source built without it starts NVML itself.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import types
from typing import Any

_thread: threading.Thread | None = None
_result: tuple[Any, BaseException | None] | None = None
_released: set[threading.Thread] = set()  # let go while still starting: they shut down alone
_lock = threading.Lock()


def start_early() -> None:
    """Import pynvml and initialise NVML now, on a daemon thread (a hung driver keeps nothing
    alive); at most once per process."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_start, name="vramtop-nvml-start", daemon=True)
            _thread.start()


def take_early() -> tuple[Any, BaseException | None] | None:
    """What start_early did, once: (pynvml, None) with NVML initialised, (pynvml, the NVMLError)
    when nvmlInit failed; None when nothing was started or pynvml could not be imported."""
    global _thread, _result
    with _lock:
        thread, _thread = _thread, None
    if thread is None:
        return None
    thread.join()
    result, _result = _result, None
    return result


def import_pynvml() -> Any:
    """pynvml, imported without running ctypes.util: pynvml imports its find_library and never
    calls it on Linux, and ctypes.util imports subprocess, tempfile, shutil and random, 8 ms of
    a 145 ms one-shot (issue 14). While pynvml imports, ctypes.util is a module holding only a
    find_library that imports the real one when called; after, the real one imports as ever."""
    if "pynvml" in sys.modules or "ctypes.util" in sys.modules:
        import pynvml

        return pynvml
    with _import_lock:
        stub = types.ModuleType("ctypes.util")
        stub.find_library = _find_library  # type: ignore[attr-defined]
        sys.modules["ctypes.util"] = stub
        try:
            import pynvml
        finally:
            if sys.modules.get("ctypes.util") is stub:
                del sys.modules["ctypes.util"]
    return pynvml


_import_lock = threading.Lock()


def _find_library(name: str) -> str | None:
    from ctypes.util import find_library

    return find_library(name)


def _start() -> None:
    global _result
    try:
        pynvml = import_pynvml()
    except ImportError:
        return  # the source's own import says why
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:
        result: tuple[Any, BaseException | None] = (pynvml, err)
    else:
        result = (pynvml, None)
    me = threading.current_thread()
    with _lock:
        released = me in _released
        _released.discard(me)
        if not released:
            _result = result
    if released and result[1] is None:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def release_early() -> None:
    """Shut down an NVML that start_early initialised and no source took (a mode that stopped
    early, say on a bad config), so that NVML's init and shutdown stay paired in a process that
    runs the command line more than once (the tests). One still starting is let go: it shuts
    down what it started, and no later source takes its answer (from another environment)."""
    global _thread, _result
    with _lock:
        thread = _thread
        if thread is None:
            return
        _thread = None
        if thread.is_alive():  # it shuts down what it started; a later source starts its own
            _released.add(thread)
            return
        result, _result = _result, None
    if result is not None and result[1] is None:
        with contextlib.suppress(Exception):
            result[0].nvmlShutdown()
