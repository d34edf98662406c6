"""A result one thread sets and others wait for: the part of ``concurrent.futures`` that the
workers, the pool and the first paint use, with the same names and behaviour.

Its own because ``concurrent.futures`` imports logging, traceback and textwrap: ~7 ms of every
one-shot run and first paint (of ~150), for one class. Its thread pools are not used anyway
(their threads are joined at exit; ours are daemons).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
FIRST_COMPLETED = "FIRST_COMPLETED"
ALL_COMPLETED = "ALL_COMPLETED"
_PENDING, _RUNNING, _CANCELLED, _FINISHED = range(4)


class CancelledError(Exception):
    """The job was cancelled before it ran (a stopped worker)."""


class Future(Generic[T]):
    __slots__ = ("_callbacks", "_cond", "_error", "_result", "_state")

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._state = _PENDING
        self._result: Any = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[Future[T]], Any]] = []

    def cancel(self) -> bool:
        """Cancels a job not yet running; False once it runs or ran."""
        with self._cond:
            if self._state in (_RUNNING, _FINISHED):
                return False
            if self._state == _PENDING:
                self._state = _CANCELLED
                self._cond.notify_all()
        self._call_back()
        return True

    def cancelled(self) -> bool:
        return self._state == _CANCELLED

    def running(self) -> bool:
        return self._state == _RUNNING

    def done(self) -> bool:
        return self._state in (_CANCELLED, _FINISHED)

    def set_running_or_notify_cancel(self) -> bool:
        """For the thread about to run the job: False where it was cancelled meanwhile."""
        with self._cond:
            if self._state == _CANCELLED:
                return False
            self._state = _RUNNING
            return True

    def set_result(self, result: T) -> None:
        self._finish(result, None)

    def set_exception(self, error: BaseException) -> None:
        self._finish(None, error)

    def result(self, timeout: float | None = None) -> T:
        self._wait(timeout)
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[no-any-return]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._wait(timeout)
        return self._error

    def add_done_callback(self, fn: Callable[[Future[T]], Any]) -> None:
        with self._cond:
            if not self.done():
                self._callbacks.append(fn)
                return
        fn(self)

    def _finish(self, result: Any, error: BaseException | None) -> None:
        with self._cond:
            if self.done():
                raise RuntimeError("a future is finished once")
            self._result, self._error, self._state = result, error, _FINISHED
            self._cond.notify_all()
        self._call_back()

    def _call_back(self) -> None:
        with self._cond:
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            fn(self)

    def _wait(self, timeout: float | None) -> None:
        with self._cond:
            if not self.done():
                self._cond.wait_for(self.done, timeout)
            if self._state == _CANCELLED:
                raise CancelledError()
            if self._state != _FINISHED:
                raise TimeoutError()


def wait(
    futures: Iterable[Future[Any]], timeout: float | None = None, return_when: str = ALL_COMPLETED
) -> tuple[set[Future[Any]], set[Future[Any]]]:
    """(done, not done) once all are done, or one is (FIRST_COMPLETED), or at ``timeout``."""
    futures = set(futures)
    woken = threading.Event()
    for f in futures:
        f.add_done_callback(lambda _: woken.set())
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        done = {f for f in futures if f.done()}
        enough = done if return_when == FIRST_COMPLETED else len(done) == len(futures)
        left = None if deadline is None else deadline - time.monotonic()
        if enough or (left is not None and left <= 0):
            return done, futures - done
        woken.clear()
        if all(not f.done() for f in futures - done):  # none finished since we looked
            woken.wait(left)
