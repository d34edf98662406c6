"""Write the Frame on screen as plain text and Markdown, named by host and UTC time."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

from vramtop.export import render
from vramtop.fleet import Rules
from vramtop.model import Frame

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def base_name(frame: Frame) -> str:
    host = _UNSAFE.sub("_", frame.host.hostname).strip("._") or "host"
    stamp = datetime.fromtimestamp(frame.time, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"vramtop-{host[:64]}-{stamp}"


def write_snapshot(
    frame: Frame,
    directory: Path,
    rules: Rules | None = None,
    links: tuple[tuple[str, str], ...] = (),
) -> tuple[Path, Path]:
    """``vramtop-<host>-<YYYYmmddTHHMMSSZ>.txt`` and ``.md``; never overwrites: a second
    snapshot of the same second gets ``-2``, ``-3``... OSError if the files cannot be written."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = base_name(frame)
    for n in range(1, 1000):
        name = stem if n == 1 else f"{stem}-{n}"
        txt, md = directory / f"{name}.txt", directory / f"{name}.md"
        if txt.exists() or md.exists():
            continue
        _write_new(txt, render(frame, "text", rules=rules))
        _write_new(md, render(frame, "markdown", rules=rules, links=links))
        return txt, md
    raise FileExistsError(f"too many snapshots named {stem} in {directory}")


def _write_new(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
