"""Recording: random access to the frames of a recording, for replay.

Opening reads only block headers (and checksums payloads); it keeps per frame its time, offset,
length and alert digest (about 30 bytes), never the decoded Frames. ``frame(i)`` decodes from the
key frame at or before ``i``; the decoder is kept, so stepping forward decodes one block.
"""

from __future__ import annotations

import bisect
import os
import threading
import zlib
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import Self

from vramtop.model import Frame
from vramtop.record.blocks import Index, RecordingError, Session, not_a_file, scan
from vramtop.record.checks import Bad
from vramtop.record.codec import Decoder

CHECK_EVERY = 30  # frames between in-memory resume points, so stepping back stays cheap
CHECKPOINTS = 64  # resume points kept (a few key-frame intervals around where replay is)
MAX_FRAME = 64 << 20  # bytes a frame may inflate to: beyond is damage, not a frame


@dataclass(slots=True)
class _Point:
    """Decoding state just after frame ``index``: enough to decode ``index + 1`` next."""

    index: int
    frame: Frame
    inflate: zlib._Decompress


class Recording:
    """``Recording.open(path)``: ``len()``, ``times``, ``frame(i)``, ``index_at(epoch)``, the
    alert-change neighbours of a frame, ``sessions``; thread-safe. A file still being recorded
    is read as it was when opened. ``start``/``end`` need at least one frame."""

    def __init__(self, path: str, fd: int, idx: Index) -> None:
        self.path = path
        self.times = memoryview(idx.times).toreadonly()  # each frame's epoch, recording order
        self.sessions: tuple[Session, ...] = tuple(idx.sessions)
        self.dropped_bytes = idx.dropped  # a torn tail or damage that was skipped
        self._fd: int | None = fd
        self._idx = idx
        self._lock = threading.Lock()
        self._cursor: _Point | None = None
        self._points: OrderedDict[int, _Point] = OrderedDict()
        times = idx.times
        if all(times[i] <= times[i + 1] for i in range(len(times) - 1)):
            self._order: array | None = None
            self._sorted = times
        else:  # a clock stepped back: search in time order, answer in recording order
            self._order = array("q", sorted(range(len(times)), key=lambda i: (times[i], i)))
            self._sorted = array("d", (times[i] for i in self._order))
        d = idx.digests
        self._changes = array("q", (i for i in range(1, len(d)) if d[i] != d[i - 1]))

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Recording:
        path = os.fspath(path)
        try:
            # O_NONBLOCK: a FIFO is refused below instead of waiting for a writer.
            raw = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as err:
            raise RecordingError(f"cannot read {path}: {err.strerror}") from None
        try:
            if (refused := not_a_file(path, os.fstat(raw).st_mode)) is not None:
                raise refused
            f = open(raw, "rb", buffering=1 << 16)  # noqa: SIM115 - its fd outlives the scan
        except BaseException:
            os.close(raw)
            raise
        try:
            idx = scan(f, path)
            fd = os.dup(f.fileno())
        except OSError as err:
            raise RecordingError(f"cannot read {path}: {err.strerror}") from None
        finally:
            f.close()
        return cls(path, fd, idx)

    def __len__(self) -> int:
        return len(self._idx.times)

    @property
    def start(self) -> float:
        return self._sorted[0]

    @property
    def end(self) -> float:
        return self._sorted[-1]

    def frame(self, i: int) -> Frame:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"frame {i} of a recording of {n}")
        with self._lock:
            keys = self._idx.keys
            key = keys[bisect.bisect_right(keys, i) - 1]
            at = self._resume_point(key, i)
            if at is not None and at.index == i:
                return at.frame
            decoder = Decoder()
            if at is None:
                j, inflate = key, zlib.decompressobj(-15)
            else:
                j, inflate, decoder.prev = at.index + 1, at.inflate.copy(), at.frame
            try:
                while True:
                    frame = self._decode(j, inflate, decoder, j == key)
                    if (j - key) % CHECK_EVERY == 0 and j not in self._points:
                        self._remember(_Point(j, frame, inflate.copy()))
                    if j == i:
                        break
                    j += 1
            except RecordingError:
                raise
            except Exception as err:  # a crafted or damaged payload behind a valid checksum
                raise RecordingError(
                    f"{self.path}: frame {j + 1} of {n} cannot be read ({_why(err)})"
                ) from None
            self._cursor = _Point(i, frame, inflate)
            return frame

    def _decode(self, j: int, inflate: zlib._Decompress, decoder: Decoder, key: bool) -> Frame:
        data = inflate.decompress(self._read(j), MAX_FRAME)
        if inflate.unconsumed_tail:
            raise Bad(f"it holds more than {MAX_FRAME >> 20} MiB")
        return decoder.decode(data, self._idx.times[j], key)

    def _resume_point(self, key: int, i: int) -> _Point | None:
        """The nearest known decoding state at or before ``i`` in its key frame's stream."""
        best = self._cursor if self._cursor and key <= self._cursor.index <= i else None
        m = key + (i - key) // CHECK_EVERY * CHECK_EVERY
        point = self._points.get(m)
        if point is not None and (best is None or point.index > best.index):
            self._points.move_to_end(m)
            best = point
        return best

    def _remember(self, point: _Point) -> None:
        self._points[point.index] = point
        if len(self._points) > CHECKPOINTS:
            self._points.popitem(last=False)

    def _read(self, i: int) -> bytes:
        if self._fd is None:
            raise RecordingError(f"the recording {self.path} is closed")
        n = self._idx.lengths[i]
        try:
            data = os.pread(self._fd, n, self._idx.offsets[i])
        except OSError as err:
            raise RecordingError(f"cannot read {self.path}: {err.strerror}") from None
        if len(data) < n:
            raise RecordingError(f"{self.path} was cut short while it was being replayed")
        return data

    def index_at(self, epoch: float) -> int | None:
        """The frame shown at ``epoch``: the latest one at or before it; None before the first."""
        p = bisect.bisect_right(self._sorted, epoch)
        if p == 0:
            return None
        return p - 1 if self._order is None else self._order[p - 1]

    def index_of_next_alert_change(self, i: int) -> int | None:
        """The first frame after ``i`` whose set of (alert name, state), newest health event or
        GPU Health findings differ from the one before it (see codec.alert_digest)."""
        p = bisect.bisect_right(self._changes, i)
        return self._changes[p] if p < len(self._changes) else None

    def index_of_previous_alert_change(self, i: int) -> int | None:
        """The last such frame before ``i``."""
        p = bisect.bisect_left(self._changes, i)
        return self._changes[p - 1] if p > 0 else None

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            self._cursor = None
            self._points.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _why(err: Exception) -> str:
    """The reason a payload could not be decoded, in a few words."""
    if isinstance(err, Bad):
        return str(err)
    if isinstance(err, zlib.error):
        return "its compressed data is damaged"
    if isinstance(err, UnicodeDecodeError | ValueError):
        return "its data is not a frame"
    if isinstance(err, RecursionError):
        return "its data is nested too deeply"
    if isinstance(err, MemoryError):
        return "it is too large to decode"
    return f"{type(err).__name__}: {str(err)[:200]}"
