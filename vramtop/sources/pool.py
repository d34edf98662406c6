"""A small pool of daemon threads for a source's concurrent requests."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

from vramtop.futures import Future
from vramtop.sources.base import SourceError


class DaemonPool:
    """A few daemon threads running calls: unlike concurrent.futures, whose workers are joined
    at exit, a request still running when the output is done never keeps the process alive."""

    def __init__(self, workers: int, name: str) -> None:
        self._size = workers
        self._name = name
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = 0
        self._unfinished = 0  # jobs queued or running: a job left running holds a thread
        self._lock = threading.Lock()
        self._closed = False

    def map(self, fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
        """``[fn(x) for x in items]``, concurrently; the first exception is raised."""
        futures = self._put([(fn, item) for item in items])
        return [f.result() for f in futures]

    def submit(self, fn: Callable[[Any], Any], item: Any) -> Future[Any]:
        """``fn(item)`` on a pool thread, left running: its Future says when it is done."""
        return self._put([(fn, item)])[0]

    def _put(self, calls: list[tuple[Callable[[Any], Any], Any]]) -> list[Future[Any]]:
        futures: list[Future[Any]] = []
        with self._lock:
            if self._closed:
                raise SourceError("the source is closed")
            for fn, item in calls:
                fut: Future[Any] = Future()
                self._jobs.put((fut, fn, item))
                futures.append(fut)
            self._unfinished += len(calls)
            while self._threads < min(self._size, self._unfinished):
                self._threads += 1
                name = f"{self._name}-{self._threads}"
                threading.Thread(target=self._run, name=name, daemon=True).start()
        return futures

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            for _ in range(self._threads):
                self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fut, fn, item = job
            try:
                if fut.set_running_or_notify_cancel():
                    try:
                        fut.set_result(fn(item))
                    except BaseException as err:  # handed to the caller
                        fut.set_exception(err)
            finally:
                with self._lock:
                    self._unfinished -= 1
