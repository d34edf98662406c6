"""The container: session starts and checksummed blocks (see vramtop.record for the layout), and
the scan that indexes a file without decompressing it."""

from __future__ import annotations

import contextlib
import json
import math
import mmap
import os
import stat
import struct
import zlib
from array import array
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from vramtop import __version__
from vramtop.record.checks import MAX_EPOCH, valid_epoch
from vramtop.records import record

FORMAT_VERSION = 1
MAGIC = b"\x89VRAMTOP-REC\r\n\x1a\n"
START = struct.Struct("<16sHH")  # magic, format version, reserved
BLOCK = struct.Struct("<cdIII")  # tag, time, alert digest, payload length, crc32
HEADER, KEY, DELTA = b"H", b"K", b"D"
MAX_PAYLOAD = 64 << 20  # a bigger length is damage, not a frame


class RecordingError(Exception):
    """A recording cannot be read or written; the message is one sentence for the user."""


@record
class Session:
    """One run of a recorder: frames ``first`` .. ``first + count - 1`` of the recording."""

    format: int
    vramtop: str
    host: str
    start: float
    interval: float | None
    first: int
    count: int


def session_start(host: str, start: float, interval: float | None) -> bytes:
    # Only these fields: a recording never holds settings, URLs or headers.
    header = {"vramtop": __version__, "host": host, "start": start, "interval": interval}
    payload = json.dumps(header, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return START.pack(MAGIC, FORMAT_VERSION, 0) + block(HEADER, start, 0, payload)


def block(tag: bytes, time: float, digest: int, payload: bytes) -> bytes:
    head = BLOCK.pack(tag, time, digest, len(payload), 0)[:-4]
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + crc.to_bytes(4, "little") + payload


@dataclass(slots=True)
class Index:
    """Where every frame lies; built by one pass over the file's block headers."""

    sessions: list[Session] = field(default_factory=list)
    times: array = field(default_factory=lambda: array("d"))
    offsets: array = field(default_factory=lambda: array("q"))  # of each payload
    lengths: array = field(default_factory=lambda: array("I"))
    digests: array = field(default_factory=lambda: array("I"))
    keys: array = field(default_factory=lambda: array("q"))  # frame numbers of key frames
    end: int = 0  # just past the last good block: where an appending recorder writes
    dropped: int = 0  # bytes that are no good block: a torn tail, or damage


def not_a_file(path: str, mode: int) -> RecordingError | None:
    """Why ``path`` cannot be a recording, when it is not a regular file: reading a FIFO or a
    device would block or never end."""
    if stat.S_ISREG(mode):
        return None
    kind = (
        "a directory"
        if stat.S_ISDIR(mode)
        else "a pipe (FIFO)"
        if stat.S_ISFIFO(mode)
        else "a socket"
        if stat.S_ISSOCK(mode)
        else "a device"
    )
    return RecordingError(f"{path} is {kind}: a recording is a regular file")


def newer_error(path: str, version: int) -> RecordingError:
    return RecordingError(
        f"{path} was written by a newer vramtop (recording format {version}; vramtop "
        f"{__version__} reads up to format {FORMAT_VERSION}): upgrade vramtop to read it"
    )


def scan(f: BinaryIO, path: str) -> Index:
    """Index ``f``. Raises RecordingError when it is not a recording or is from a newer format;
    a torn or damaged block ends its session, and reading resumes at the next session start."""
    size = os.fstat(f.fileno()).st_size
    idx = Index()
    f.seek(0)
    head = f.read(START.size)
    if head and not (head.startswith(MAGIC) or MAGIC.startswith(head)):
        raise RecordingError(f"{path} is not a vramtop recording")
    pos, session = 0, None
    while pos < size:
        f.seek(pos)
        if session is None:
            session, step = _start(f, path)
        else:
            step = _frame(f, session, idx)
            if step == 0:  # the next session starts here
                _close(idx, session)
                session = None
                continue
        if step is None:  # torn or damaged: go on at the next session start
            if session is not None:
                _close(idx, session)
            session = None
            resume = _resync(f, pos + 1, size)
            idx.dropped += resume - pos
            pos = resume
            continue
        pos += step
        idx.end = pos
    if session is not None:
        _close(idx, session)
    return idx


def _start(f: BinaryIO, path: str) -> tuple[dict | None, int | None]:
    head = f.read(START.size)
    if len(head) < START.size or head[: len(MAGIC)] != MAGIC:
        return None, None
    _, version, _ = START.unpack(head)
    if version > FORMAT_VERSION:
        raise newer_error(path, version)
    if version < 1:
        return None, None
    got = _block(f, f.read(BLOCK.size))
    if got is None or got[0] != HEADER:
        return None, None
    try:
        header = json.loads(got[4].decode("utf-8", "surrogatepass"))
    except ValueError:
        return None, None
    if not isinstance(header, dict):
        return None, None
    header["format"] = version
    header["first"] = None
    return header, START.size + BLOCK.size + len(got[4])


def _frame(f: BinaryIO, session: dict[str, Any], idx: Index) -> int | None:
    pos = f.tell()
    head = f.read(BLOCK.size)
    if head[: len(MAGIC)] == MAGIC:
        return 0
    got = _block(f, head)
    if got is None:
        return None
    tag, time, digest, length, _ = got
    if not valid_epoch(time):
        return None  # no writer stamps such a time: damage, or a crafted block
    n = len(idx.times)
    if tag == KEY:
        idx.keys.append(n)
    elif tag != DELTA or session["first"] is None:
        return None  # a delta needs the key frame that starts its stream
    if session["first"] is None:
        session["first"] = n
    idx.times.append(time)
    idx.offsets.append(pos + BLOCK.size)
    idx.lengths.append(length)
    idx.digests.append(digest)
    return BLOCK.size + length


def _block(f: BinaryIO, head: bytes) -> tuple[bytes, float, int, int, bytes] | None:
    if len(head) < BLOCK.size:
        return None
    tag, time, digest, length, crc = BLOCK.unpack(head)
    if length > MAX_PAYLOAD:
        return None
    payload = f.read(length)
    if len(payload) < length or zlib.crc32(payload, zlib.crc32(head[:-4])) != crc:
        return None
    return tag, time, digest, length, payload


def _close(idx: Index, s: dict[str, Any]) -> None:
    if s["first"] is None:
        return  # a session that never got a frame
    start = _number(s.get("start"))
    interval = _number(s.get("interval"))
    idx.sessions.append(
        Session(
            format=s["format"],
            vramtop=str(s.get("vramtop", "")),
            host=str(s.get("host", "")),
            start=idx.times[s["first"]] if start is None else start,
            interval=interval if interval is not None and interval > 0 else None,
            first=s["first"],
            count=len(idx.times) - s["first"],
        )
    )


def _number(value: Any) -> float | None:
    ok = type(value) in (int, float) and math.isfinite(value) and abs(value) <= MAX_EPOCH
    return float(value) if ok else None


def _resync(f: BinaryIO, start: int, size: int) -> int:
    """The offset of the next session start at or after ``start``, else the end of the file."""
    if start >= size:
        return size
    with (
        contextlib.suppress(ValueError, OSError),
        mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m,
    ):
        found = m.find(MAGIC, start)
        if found >= 0:
            return found
    return size
