"""A feed whose Frames are also appended to a recording, on the feed's own thread (never the
UI's): ``--record`` in the live view and ``--record --headless`` are this same wrapper."""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING

from vramtop.clean import one_line
from vramtop.feeds import Arrived, Backfill, Feed, FeedStatus, Message, Post, Trouble

if TYPE_CHECKING:
    from vramtop.record import Recorder


class Recorded:
    def __init__(self, feed: Feed, recorder: Recorder) -> None:
        self.feed = feed
        self.recorder = recorder
        self.kind = feed.kind
        self.commands = feed.commands
        self.tick_every = feed.tick_every
        self.appended = 0
        self._failing: str | None = None
        self._lock = threading.Lock()  # close() waits for an append in progress
        self._closed = False
        self._post: Post | None = None

    def start(self, post: Post) -> None:
        self._post = post
        self.feed.start(self._record)

    def _record(self, message: Message) -> None:
        assert self._post is not None
        if isinstance(message, Arrived):
            with self._lock:
                if self._closed:
                    return
                try:
                    self.recorder.append(message.frame)
                except Exception as err:  # RecordingError: said once; the next append retries
                    reason = one_line(err)
                    if reason != self._failing:
                        self._post(Trouble("record", reason))
                    self._failing = reason
                else:
                    self.appended += 1
                    if self._failing is not None:
                        self._post(Trouble("record", None))
                    self._failing = None
        self._post(message)

    def stop(self) -> None:
        """Stops the feed and closes the recording; a frame being collected is dropped, so the
        file ends with a complete one."""
        self.feed.stop()
        with self._lock:
            if not self._closed:
                self._closed = True
                self.recorder.close()

    def tick(self) -> str | None:
        return self.feed.tick()

    def run(self, command: str, arg: int = 0) -> str | None:
        return self.feed.run(command, arg)

    def screen_paused(self, paused: bool) -> float | None:
        return None  # the recording keeps its interval, whatever the screen does

    def status(self) -> FeedStatus:
        return replace(self.feed.status(), recording=self.recorder.path)

    @property
    def backfill(self) -> Backfill | None:
        return self.feed.backfill
