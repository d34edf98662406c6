"""The replay's decoding thread: Frames from a Recording, off the UI thread.

A request names the frame to show and the frame the app's History ends at. A little ahead of
it (playing, stepping forward), the frames in between come back, to be added one by one as the
live view adds collected ones. Anywhere else (a seek, a step back) a fresh History comes back,
built from the frames of up to ``REBUILD_SPAN`` before the target (at most ``REBUILD_FRAMES``),
so charts and sparklines are right without decoding the whole file. Only the newest request is
served: holding a key skips the frames in between.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vramtop.clean import one_line
from vramtop.history import History
from vramtop.model import Frame
from vramtop.record import Recording

REBUILD_SPAN = 3600.0  # the drill-downs' 1 h window; longer ones fill as playback goes on
REBUILD_FRAMES = 1800  # 1 h at 2 s: about half a second of decoding


@dataclass(frozen=True)
class Decoded:
    """The answer to ``request(index, after)``: ``frames`` end with frame ``index``. With
    ``history`` None they are the frames after ``after``, to add to the History that ends
    there; otherwise ``history`` replaces it and already holds them."""

    index: int
    after: int | None
    frames: tuple[Frame, ...] = ()
    history: History | None = None
    error: str | None = None


class Feed:
    """One daemon thread; ``request`` never blocks, and ``deliver`` is called on the thread."""

    def __init__(self, recording: Recording, deliver: Callable[[Decoded], Any]) -> None:
        self.recording = recording
        self._deliver = deliver
        self._lock = threading.Lock()
        self._go = threading.Event()
        self._pending: tuple[int, int | None] | None = None
        self._stopped = False
        self._thread: threading.Thread | None = None

    def request(self, index: int, after: int | None) -> None:
        with self._lock:
            if self._stopped:
                return
            self._pending = (index, after)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="vramtop-replay", daemon=True
                )
                self._thread.start()
        self._go.set()

    def stop(self) -> None:
        self._stopped = True
        self._go.set()

    def _take(self) -> tuple[int, int | None] | None:
        with self._lock:
            pending, self._pending = self._pending, None
            return pending

    def _superseded(self) -> bool:
        return self._stopped or self._pending is not None

    def _run(self) -> None:
        while True:
            self._go.wait()
            self._go.clear()
            if self._stopped:
                return
            pending = self._take()
            if pending is None:
                continue
            index, after = pending
            try:
                answer = self.decode(index, after)
            except Exception as err:  # a file cut short while replaying: say so, keep going
                answer = Decoded(index, after, error=one_line(err))
            if answer is not None and not self._stopped:
                self._deliver(answer)

    def decode(self, index: int, after: int | None) -> Decoded | None:
        """The answer, or None when a newer request came in while rebuilding."""
        rec = self.recording
        if after is not None and 0 < index - after <= REBUILD_FRAMES:
            frames = tuple(rec.frame(i) for i in range(after + 1, index + 1))
            return Decoded(index, after, frames)
        history = History()
        frame = None
        for i in range(rebuild_start(rec, index), index + 1):
            if self._superseded():
                return None
            frame = rec.frame(i)
            history.add(frame)
        assert frame is not None
        return Decoded(index, after, (frame,), history)


def rebuild_start(rec: Recording, index: int) -> int:
    """The first frame a rebuilt History for ``index`` starts from."""
    since = rec.times[index] - REBUILD_SPAN
    first = max(0, index - REBUILD_FRAMES + 1)
    while first < index and rec.times[first] < since:
        first += 1
    return first
