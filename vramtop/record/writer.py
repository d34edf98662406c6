"""Recorder: appends Frames to a recording, one durable block per frame."""

from __future__ import annotations

import os
import threading
import zlib
from typing import Self

from vramtop.model import Frame
from vramtop.record.blocks import (
    DELTA,
    KEY,
    RecordingError,
    block,
    not_a_file,
    scan,
    session_start,
)
from vramtop.record.codec import Encoder, alert_digest

try:
    import fcntl
except ImportError:  # pragma: no cover - not a POSIX system
    fcntl = None  # type: ignore[assignment]

KEY_EVERY = 150  # frames between key frames: 5 minutes at 2 s; bounds a seek to 150 decodes
LEVEL = 6


class Recorder:
    """``Recorder(path).append(frame)`` ... ``.close()``; thread-safe.

    Opening validates an existing file (it must be a recording this vramtop can read), cuts off
    a torn tail left by a killed recorder, and the first append starts a new session after what
    is there. Each append is one compressed write of typically a few hundred bytes; no fsync
    (only close syncs), so a slow disk costs a write() and nothing more. A failed write raises
    RecordingError; the next append starts over with a key frame.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        interval: float | None = None,
        key_every: int = KEY_EVERY,
    ) -> None:
        self.path = os.fspath(path)
        self.interval = interval
        self.frames = 0  # appended by this recorder
        self._key_every = max(1, key_every)
        self._lock = threading.Lock()
        self._started = False
        self._since_key = 0
        self._encoder = Encoder()
        self._z = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
        existed = os.path.lexists(self.path)
        try:
            # 0o600: command lines are redacted at the source, but the file may outlive the box.
            # O_NONBLOCK: a FIFO or a device is refused below, never written into.
            flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NONBLOCK
            self._fd: int | None = os.open(self.path, flags, 0o600)
        except OSError as err:
            raise RecordingError(f"cannot write {self.path}: {err.strerror}") from None
        try:
            if (refused := not_a_file(self.path, os.fstat(self._fd).st_mode)) is not None:
                raise refused
            self._lock_file()
            self._end = self._repair()
            # Created here and still empty at close (stopped before its first frame): removed.
            self._created = not existed and self._end == 0
        except BaseException:
            os.close(self._fd)
            self._fd = None
            raise

    def _lock_file(self) -> None:
        if fcntl is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # type: ignore[arg-type]
        except BlockingIOError:
            raise RecordingError(f"{self.path} is being recorded by another vramtop") from None

    def _repair(self) -> int:
        """Index what is there; drop a torn tail so this session follows the last good frame."""
        assert self._fd is not None
        with open(self._fd, "rb", closefd=False) as f:
            idx = scan(f, self.path)
        size = os.fstat(self._fd).st_size
        if idx.end < size:
            try:
                os.ftruncate(self._fd, idx.end)
            except OSError as err:
                raise RecordingError(f"cannot write {self.path}: {err.strerror}") from None
        return idx.end

    def append(self, frame: Frame) -> None:
        with self._lock:
            if self._fd is None:
                raise RecordingError(f"the recording {self.path} is closed")
            data = b""
            if not self._started:
                data = session_start(frame.host.hostname, frame.time, self.interval)
            key = self._since_key % self._key_every == 0
            if key:
                # A fresh deflate stream: a reader can start decoding at this block.
                self._z = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
            payload = self._z.compress(self._encoder.encode(frame, key))
            payload += self._z.flush(zlib.Z_SYNC_FLUSH)
            data += block(KEY if key else DELTA, frame.time, alert_digest(frame), payload)
            self._write(data)
            self._started = True
            self._since_key += 1
            self.frames += 1

    def _write(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as err:
            # Undo a partial block; the compressor has seen this frame, so restart the stream.
            self._since_key = 0
            try:
                os.ftruncate(self._fd, self._end)
            except OSError:
                self._started = False  # a torn block stays: begin a new session after it
            raise RecordingError(f"cannot write {self.path}: {err.strerror}") from None
        self._end += len(data)

    def close(self) -> None:
        with self._lock:
            if self._fd is None:
                return
            fd, self._fd = self._fd, None
            try:
                if self._created and self.frames == 0:
                    self._remove_empty(fd)
                os.fsync(fd)
            except OSError:
                pass
            finally:
                os.close(fd)

    def _remove_empty(self, fd: int) -> None:
        mine, there = os.fstat(fd), os.stat(self.path)
        if mine.st_size == 0 and (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino):
            os.unlink(self.path)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
