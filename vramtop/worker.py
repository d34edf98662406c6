"""One background thread that runs one job at a time, only when asked: the collector's source
workers, the live feed's collection loop and the replay's decoder are each one of these.

It is a daemon thread, so a job stuck in a hung driver or server call never keeps the process
alive (``concurrent.futures`` workers are joined at exit). Requests never pile up: while a job
runs, at most one more waits, and a request for a job already waiting either joins it (the
collector: one poll at a time per source) or replaces its argument (the replay: only the newest
position is decoded).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from vramtop.futures import Future


class Worker:
    def __init__(self, job: Callable[[Any], Any], name: str) -> None:
        self._job = job
        self._name = name
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._waiting: tuple[Future[Any], Any] | None = None
        self._running: Future[Any] | None = None
        self._stopped = False
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        return self._running is not None or self._waiting is not None

    def submit(self, arg: Any = None, *, join: bool = True) -> Future[Any]:
        """The future of ``job(arg)``. With ``join`` a job that is running or waiting is the
        answer (no second one is queued); without, a waiting job's argument is replaced and a
        running one is followed by this one."""
        with self._lock:
            if self._stopped:
                fut: Future[Any] = Future()
                fut.cancel()
                return fut
            if self._waiting is not None:
                if not join:
                    self._waiting = (self._waiting[0], arg)
                return self._waiting[0]
            if join and self._running is not None:
                return self._running
            fut = Future()
            self._waiting = (fut, arg)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._wake.notify()
            return fut

    def superseded(self) -> bool:
        """For a long job to ask whether its answer is still wanted."""
        return self._stopped or self._waiting is not None

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            if self._waiting is not None:
                self._waiting[0].cancel()
                self._waiting = None
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._waiting is None and not self._stopped:
                    self._wake.wait()
                if self._stopped:
                    return
                assert self._waiting is not None
                fut, arg = self._waiting
                self._waiting = None
                if not fut.set_running_or_notify_cancel():
                    continue
                self._running = fut
            try:
                result = self._job(arg)
            except BaseException as err:  # the caller decides what a failure means
                with self._lock:
                    self._running = None
                fut.set_exception(err)
            else:
                with self._lock:
                    self._running = None
                fut.set_result(result)
