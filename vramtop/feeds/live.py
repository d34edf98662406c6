"""The live feed: the collector run on one worker, the next refresh ``interval`` after the
previous one finished, so a slow source never makes refreshes pile up. While the screen is
paused it collects every ``PAUSED_EVERY`` seconds at most often: the history goes on at that
coarser step, without a gap, for a fraction of the CPU."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from vramtop import redact
from vramtop.clean import one_line
from vramtop.feeds import Arrived, Backfill, FeedStatus, Post, Trouble
from vramtop.model import Frame
from vramtop.worker import Worker

MIN_INTERVAL = 0.5  # the live view's fastest refresh: faster costs more than it shows
INTERVAL_STEPS = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)
# Nothing is drawn while paused: each collection then only feeds the history. On the bench's
# 8-GPU host one costs about 15 ms locally, 40 ms with Prometheus; every 5 s that alone is
# 0.3-0.8 % CPU, every 60 s under 0.1 %, against the 0.3 % a paused screen may cost (issue 14).
PAUSED_EVERY = 60.0


class Collects(Protocol):
    def collect(self) -> Frame: ...


class LiveFeed:
    kind = "live"
    commands = frozenset({"refresh", "slower", "faster"})
    tick_every = None

    def __init__(
        self,
        collector: Collects,
        interval: float,
        clock: Callable[[], float] = time.time,
        minimum: float = MIN_INTERVAL,
    ) -> None:
        self.collector = collector
        self.minimum = minimum
        self.interval = max(minimum, interval)
        self._clock = clock
        self._worker = Worker(lambda _: collector.collect(), "vramtop-poll")
        self._cond = threading.Condition()
        self._refresh = False
        self._stopped = False
        self._paused = False
        self._post: Post | None = None
        self.busy_since: float | None = None

    # -- the loop ----------------------------------------------------------------------------

    def start(self, post: Post) -> None:
        self._post = post
        threading.Thread(target=self._loop, name="vramtop-pace", daemon=True).start()

    def stop(self) -> None:
        self._stopped = True
        self._worker.stop()
        self._poke()

    def _poke(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _loop(self) -> None:
        while not self._stopped:
            self._refresh = False  # one asked for while collecting runs right after it
            self.once()
            finished = time.monotonic()
            with self._cond:
                while not (self._stopped or self._refresh):
                    left = finished + self.pace - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)

    def once(self) -> Frame | None:
        """One collection on the worker, its Frame (or its failure) posted."""
        assert self._post is not None
        self.busy_since = self._clock()
        try:
            frame = self._worker.submit().result()
        except Exception as err:  # the collector should not raise; keep the loop alive
            self.busy_since = None
            if not self._stopped:
                self._post(Trouble("collect", f"collection failed: {redact.text(one_line(err))}"))
            return None
        self.busy_since = None
        if not self._stopped:
            self._post(Arrived(frame, (frame,), replaceable=True))
        return frame

    # -- commands ----------------------------------------------------------------------------

    def run(self, command: str, arg: int = 0) -> str | None:
        if command == "refresh":
            if callable(read_all := getattr(self.collector, "read_remote_next", None)):
                read_all()  # "now" means Prometheus too, not its answer of a moment ago
            self._refresh = True
            self._poke()
            return None
        if command == "slower":
            bigger = [s for s in INTERVAL_STEPS if s > self.interval + 1e-9]
            self.set_interval(bigger[0] if bigger else self.interval)
        elif command == "faster":
            smaller = [s for s in INTERVAL_STEPS if s < self.interval - 1e-9]
            self.set_interval(smaller[-1] if smaller else self.minimum)
        else:
            raise ValueError(command)
        return f"Refresh every {self.interval:g} s"

    @property
    def pace(self) -> float:
        """Seconds between collections now: the interval, or slower while paused."""
        return max(self.interval, PAUSED_EVERY) if self._paused else self.interval

    def screen_paused(self, paused: bool) -> float | None:
        self._paused = paused
        if not paused:  # resumed: collect now, the screen shows the newest at once
            self._refresh = True
        self._poke()
        return self.pace if paused else None

    def set_interval(self, seconds: float) -> None:
        """The next refresh comes ``seconds`` after the previous one (or now, if that passed)."""
        self.interval = max(self.minimum, seconds)
        self._poke()

    def tick(self) -> str | None:
        return None

    def status(self) -> FeedStatus:
        remote = getattr(self.collector, "remote_every", 0.0)
        paused = self.pace if self._paused else None
        return FeedStatus(
            self.interval, self.busy_since, remote_interval=remote or None, paused_every=paused
        )

    @property
    def backfill(self) -> Backfill | None:
        return getattr(self.collector, "backfill", None)
