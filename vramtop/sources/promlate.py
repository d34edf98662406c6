"""The one request of a refresh that may outlast the rest: rates over every bucket of the
histograms (each replica's p95, each model's quantiles). At a fleet's size Prometheus spends
seconds on it where the other requests take a fraction of that, and on a busy Prometheus it
slows them all. So at that size it is asked every EVERY seconds, not every refresh, and does
not hold a refresh: it runs on, and until it answers each refresh reuses its last answer, with
its age. Which fleets: by the size of its last answer, not by timings, so that a small fleet
(and every test of one) has each refresh's own figures, as before."""

from __future__ import annotations

from collections.abc import Callable

from vramtop.futures import Future, wait
from vramtop.records import record
from vramtop.sources.pool import DaemonPool
from vramtop.sources.promreadings import Answer
from vramtop.sources.queries import INSTANCE_P95, Query

# Seconds from a refresh's start that the slow request may hold it, when the others are done
# sooner: it often answers within that, and the refresh has its own answer. Half a second, so
# that a 100-host fleet's refresh stays within 1 s (at 1 s, its slowest were 1.07 s).
HOLD = 0.5
# Replicas (model, instance: the series of its per-replica p95) in its last answer from which
# it is asked every EVERY s and may answer late. Prometheus's work is the rates of every
# replica's buckets (about 20 each): 100 hosts of 4 models, 8,800 series, twice.
LATE_FROM = 200
# Seconds between two of its requests at that size: its rates are over minutes (2m) of samples
# scraped every 15-60 s; one answer every 15 s keeps up with them.
EVERY = 15.0

Batch = Callable[[list[Query], float], tuple[list[Answer], int]]


@record
class Late:
    """What a refresh gets of the slow request: ``answers``, evaluated at ``at`` (an earlier
    refresh's time where they are reused or came late); ``requests``: HTTP requests sent beyond
    the one counted when it started (a batch Prometheus refused, asked one by one)."""

    answers: list[Answer]
    at: float
    requests: int = 0

    @property
    def big(self) -> bool:
        replicas = sum(len(a.samples) for a in self.answers if a.query.key == INSTANCE_P95)
        return replicas >= LATE_FROM


class LateRequest:
    def __init__(self, pool: DaemonPool, batch: Batch) -> None:
        self._pool = pool
        self._batch = batch
        self._running: tuple[tuple[Query, ...], float, Future] | None = None
        self._last: tuple[tuple[Query, ...], Late] | None = None

    def start(self, group: list[Query], at: float) -> int:
        """Sends the group's request unless one is still running for it, or its last answer
        was big and is under EVERY seconds old: the requests sent."""
        key, sent = tuple(group), 0
        if self._running is not None and self._running[0] == key:
            if not self._running[2].done():
                return 0  # never two at once: a slow Prometheus is not asked again
            sent = self._keep(*self._running).requests  # answered since: the last one now
        # Else profiles changed: an answer to the old group is of no use.
        last = self._last[1] if self._last is not None and self._last[0] == key else None
        if last is not None and last.big and at - last.at < EVERY:
            return sent
        self._running = (key, at, self._pool.submit(lambda g: self._batch(g, at), group))
        return sent + 1

    def collect(self, group: list[Query], hold: float, timeout: float) -> Late | None:
        """The newest answer for ``group``: the running request's if it answers within ``hold``
        seconds, else the last one; where there is none or it was small (LATE_FROM), the
        running request's, waited for up to ``timeout``."""
        key = tuple(group)
        last = self._last[1] if self._last is not None and self._last[0] == key else None
        if self._running is None or self._running[0] != key:
            return None if last is None else Late(last.answers, last.at)
        _, at, future = self._running
        big = last is not None and last.big
        done, _ = wait([future], timeout=max(0.0, hold if big else timeout))
        if not done:
            return None if last is None else Late(last.answers, last.at)
        return self._keep(key, at, future)

    def _keep(self, key: tuple[Query, ...], at: float, future: Future) -> Late:
        self._running = None
        answers, requests = future.result()  # a bug's exception, once
        self._last = (key, Late(answers, at))
        return Late(answers, at, requests - 1)
