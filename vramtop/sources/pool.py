"""A small pool of daemon threads for a source's concurrent requests."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from vramtop.sources.base import SourceError


class DaemonPool:
    """A few daemon threads running calls: unlike concurrent.futures, whose workers are joined
    at exit, a request still running when the output is done never keeps the process alive."""

    def __init__(self, workers: int, name: str) -> None:
        self._size = workers
        self._name = name
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = 0
        self._lock = threading.Lock()
        self._closed = False

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """``[fn(x) for x in items]``, concurrently; the first exception is raised."""
        futures: list[Future[Any]] = []
        with self._lock:
            if self._closed:
                raise SourceError("the source is closed")
            for item in items:
                fut: Future[Any] = Future()
                self._jobs.put((fut, fn, item))
                futures.append(fut)
            while self._threads < min(self._size, len(futures)):
                self._threads += 1
                name = f"{self._name}-{self._threads}"
                threading.Thread(target=self._run, name=name, daemon=True).start()
        return [f.result() for f in futures]

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            for _ in range(self._threads):
                self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fut, fn, item = job
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(item))
            except BaseException as err:  # handed to the caller of map()
                fut.set_exception(err)
