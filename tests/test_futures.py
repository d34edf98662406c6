"""vramtop.futures behaves as the concurrent.futures it replaces, across real threads."""

from __future__ import annotations

import threading
import time

import pytest

from vramtop.futures import FIRST_COMPLETED, CancelledError, Future, wait


def later(seconds: float, fn) -> threading.Thread:
    t = threading.Thread(target=lambda: (time.sleep(seconds), fn()))
    t.start()
    return t


def test_a_result_set_on_another_thread_reaches_the_waiter() -> None:
    fut: Future[int] = Future()
    assert not fut.done()
    t = later(0.05, lambda: fut.set_result(7))
    assert fut.result(timeout=5) == 7 and fut.done() and fut.exception() is None
    t.join()


def test_an_exception_is_raised_by_result_and_returned_by_exception() -> None:
    fut: Future[int] = Future()
    fut.set_exception(ValueError("bad"))
    with pytest.raises(ValueError, match="bad"):
        fut.result()
    assert isinstance(fut.exception(), ValueError)
    with pytest.raises(RuntimeError):
        fut.set_result(1)  # finished once


def test_timeout_and_cancel() -> None:
    fut: Future[int] = Future()
    with pytest.raises(TimeoutError):
        fut.result(timeout=0.01)
    assert fut.cancel() and fut.cancelled() and fut.done()
    assert not fut.set_running_or_notify_cancel()
    with pytest.raises(CancelledError):
        fut.result()
    running: Future[int] = Future()
    assert running.set_running_or_notify_cancel() and running.running()
    assert not running.cancel()  # a running job is not cancelled


def test_callbacks_run_once_done_or_at_once_when_already_done() -> None:
    seen: list[int] = []
    fut: Future[int] = Future()
    fut.add_done_callback(lambda f: seen.append(f.result()))
    fut.set_result(3)
    fut.add_done_callback(lambda f: seen.append(f.result() * 10))
    assert seen == [3, 30]


def test_wait_all_first_and_timeout() -> None:
    slow: Future[int] = Future()
    fast: Future[int] = Future()
    t = later(0.02, lambda: fast.set_result(1))
    done, pending = wait([slow, fast], timeout=5, return_when=FIRST_COMPLETED)
    assert done == {fast} and pending == {slow}
    done, pending = wait([slow, fast], timeout=0.05)
    assert done == {fast} and pending == {slow}  # the timeout, with what was done by then
    t2 = later(0.02, lambda: slow.set_result(2))
    done, pending = wait([slow, fast], timeout=5)
    assert done == {slow, fast} and pending == set()
    t.join()
    t2.join()
