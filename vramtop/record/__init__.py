"""Recordings: every Frame of a session, compact and append-only, for replay and incident notes.

On-disk format, version 1 (all integers little-endian)::

    file          = session+
    session       = start header-block frame-block*
    start         = MAGIC (16 bytes: 89 'VRAMTOP-REC' 0D 0A 1A 0A), u16 format version, u16 0
    block         = tag (1 byte), time (f64 epoch), alert digest (u32), payload length (u32),
                    crc32 of the 17 bytes before it and the payload (u32), payload
    header-block  = tag 'H', payload: JSON {"vramtop", "host", "start", "interval"} and nothing else
    frame-block   = tag 'K' (key frame) or 'D' (delta), time = Frame.time,
                    digest = crc32 of the sorted set of (alert name, state)

Frame payloads form one raw deflate stream per key frame: a 'K' block starts a new stream (so a
reader can start there), the 'D' blocks after it in the same session continue it, and every
block ends with a Z_SYNC_FLUSH, so each completed block is decodable the moment it is written.
Decompressed, a payload is the JSON of vramtop.record.codec: the whole Frame except its time
('K') or only what changed since the frame before ('D'). Key frames come every 150 frames.

Durability: a recorder killed mid-write leaves at most one torn block at the end; readers drop it
(bad length or checksum), and the next recorder cuts it off before starting its own session, so
appending to a recording is simply writing another session. Readers read every format version up
to their own and refuse newer ones with one sentence.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vramtop.record.blocks import FORMAT_VERSION, RecordingError, Session
    from vramtop.record.reader import Recording
    from vramtop.record.writer import Recorder

__all__ = ["FORMAT_VERSION", "Recorder", "Recording", "RecordingError", "Session"]
_HOME = {
    "FORMAT_VERSION": "blocks",
    "RecordingError": "blocks",
    "Session": "blocks",
    "Recording": "reader",
    "Recorder": "writer",
}


def __getattr__(name: str) -> Any:
    # Lazy: every run parses the record flags, only recording and replay need the codec.
    if name not in _HOME:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"vramtop.record.{_HOME[name]}"), name)
