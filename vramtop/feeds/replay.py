"""The replay feed: a recording's Frames, decoded on one worker, moved by keys and, while
playing, by a clock that follows the recording's own times at the chosen speed.

A position a little ahead of what was last sent (playing, stepping forward) sends the frames in
between, to be added to the consumer's History one by one as live frames are. Anywhere else (a
seek, a step back) a fresh History is sent, built from the frames of up to ``REBUILD_SPAN``
before the target (at most ``REBUILD_FRAMES``), so charts are right without decoding the whole
file. Only the newest position is decoded: holding a key skips the frames in between. Every
answer continues from the one before, so the consumer applies them all, in order.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from vramtop.clean import one_line
from vramtop.feeds import Arrived, Backfill, FeedStatus, Position, Post, Trouble
from vramtop.history import History
from vramtop.record import Recording
from vramtop.worker import Worker

REBUILD_SPAN = 3600.0  # the drill-downs' 1 h window; longer ones fill as playback goes on
REBUILD_FRAMES = 1800  # 1 h at 2 s: about half a second of decoding
SPEEDS = (0.5, 1.0, 2.0, 5.0, 10.0, 60.0)
SEEK = 60.0  # seconds that a seek moves
TICK = 0.1  # seconds between playback steps
GAP = 60.0  # a longer pause between frames (nothing was recording) plays as this long


class ReplayFeed:
    kind = "replay"
    commands = frozenset({"pause", "step", "seek", "alert_change", "go_start", "go_end", "speed"})
    tick_every = TICK
    backfill: Backfill | None = None  # the recording is all there is

    def __init__(
        self,
        recording: Recording,
        start: int,
        interval: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.recording = recording
        self.interval = interval
        self.monotonic = monotonic
        self.position = start  # the frame asked for; shown_index once it is sent
        self.shown_index: int | None = None
        self.playing = False
        self.speed = 1.0
        self._carry = 0.0  # recording seconds played but not yet used up by a frame
        self._played_at = 0.0
        self._sent_end: int | None = None  # where the consumer's History ends, all sent applied
        self._worker = Worker(self._decode, "vramtop-replay")
        self._post: Post | None = None

    @property
    def last(self) -> int:
        return len(self.recording) - 1

    def start(self, post: Post) -> None:
        self._post = post
        self._worker.submit(self.position, join=False)

    def stop(self) -> None:
        self._worker.stop()

    # -- decoding (the worker's thread) -------------------------------------------------------

    def _decode(self, index: int) -> None:
        assert self._post is not None
        rec, after = self.recording, self._sent_end
        try:
            if after == index:
                return
            if after is not None and 0 < index - after <= REBUILD_FRAMES:
                frames = tuple(rec.frame(i) for i in range(after + 1, index + 1))
                message = Arrived(frames[-1], frames)
            else:
                history = History()
                frame = None
                for i in range(rebuild_start(rec, index), index + 1):
                    if self._worker.superseded():
                        return  # a newer position is waiting: nothing sent, nothing lost
                    frame = rec.frame(i)
                    history.add(frame)
                assert frame is not None
                message = Arrived(frame, history=history)
        except Exception as err:  # a file cut short or damaged while replaying: say so, go on
            self.playing = False
            if self.shown_index is not None:
                self.position = self.shown_index
            self._post(Trouble("replay", one_line(err)))
            return
        self._sent_end = self.shown_index = index
        self._post(message)

    # -- moving (the consumer's thread) ------------------------------------------------------

    def go(self, index: int) -> None:
        index = max(0, min(index, self.last))
        self._carry, self._played_at = 0.0, self.monotonic()
        if index != self.position:
            self.position = index
            self._worker.submit(index, join=False)

    def screen_paused(self, paused: bool) -> float | None:
        return None  # a replay pauses itself ("pause" command); its screen never freezes

    def tick(self) -> str | None:
        """While playing: on to the frames whose time has come at this speed."""
        if not self.playing:
            return None
        now = self.monotonic()
        self._carry += (now - self._played_at) * self.speed
        self._played_at = now
        times, i = self.recording.times, self.position
        while i < self.last:
            # A clock stepped back plays as no time at all, a gap as at most GAP.
            step = min(max(times[i + 1] - times[i], 0.0), GAP)
            if step > self._carry:
                break
            self._carry -= step
            i += 1
        if i != self.position:
            self.position = i
            self._worker.submit(i, join=False)
        if i == self.last:
            self.playing = False
            return "End of the recording"
        return None

    advance = tick

    def run(self, command: str, arg: int = 0) -> str | None:
        if command == "pause":
            return self.toggle()
        if command == "step":
            self.playing = False
            self.go(self.position + arg)
        elif command == "seek":
            self.seek(arg)
        elif command == "alert_change":
            return self.alert_change(arg)
        elif command == "go_start":
            self.go(0)
        elif command == "go_end":
            self.go(self.last)
        elif command == "speed":
            self.change_speed(arg)
        else:
            raise ValueError(command)
        return None

    def toggle(self) -> str | None:
        if not self.playing and self.position >= self.last:
            return "At the end of the recording: 0 goes to its start"
        self.playing = not self.playing
        self._carry, self._played_at = 0.0, self.monotonic()
        return None

    def seek(self, direction: int) -> None:
        rec = self.recording
        target = rec.index_at(rec.times[self.position] + direction * SEEK)
        if target is None:
            target = 0
        elif direction > 0 and target <= self.position:
            target = self.position + 1  # a gap longer than the seek: never stuck before it
        self.go(target)

    def alert_change(self, direction: int) -> str | None:
        rec = self.recording
        if direction > 0:
            target = rec.index_of_next_alert_change(self.position)
        else:
            target = rec.index_of_previous_alert_change(self.position)
        if target is None:
            return (
                f"No {'later' if direction > 0 else 'earlier'} change in the alerts or GPU health"
            )
        self.go(target)
        return None

    def change_speed(self, direction: int) -> None:
        self.tick()  # what was played at the old speed counts at the old speed
        faster = [s for s in SPEEDS if s > self.speed]
        slower = [s for s in SPEEDS if s < self.speed]
        if direction > 0 and faster:
            self.speed = faster[0]
        elif direction < 0 and slower:
            self.speed = slower[-1]

    def status(self) -> FeedStatus:
        index = self.shown_index if self.shown_index is not None else self.position
        where = Position(index, len(self.recording), self.playing, self.speed)
        return FeedStatus(self.interval, replay=where)


def rebuild_start(rec: Recording, index: int) -> int:
    """The first frame a rebuilt History for ``index`` starts from."""
    since = rec.times[index] - REBUILD_SPAN
    first = max(0, index - REBUILD_FRAMES + 1)
    while first < index and rec.times[first] < since:
        first += 1
    return first
