"""The first paint's layout (vramtop.export.screen) at given sizes, and when its painter
(vramtop.cli.prepaint) draws at all, on a real pseudo-terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
from collections.abc import Iterator

import pytest

from vramtop import clean
from vramtop.cli.prepaint import ENTER, LEAVE, SYNC_OFF, SYNC_ON, FirstPaint
from vramtop.collector import Collector
from vramtop.config import Settings
from vramtop.export.screen import overview
from vramtop.futures import wait
from vramtop.model import Frame
from vramtop.wiring import build_collector

T0 = 1_700_000_000.0


@pytest.fixture
def demo() -> Iterator[Collector]:
    collector = build_collector(Settings(), {}, demo=True, clock=lambda: T0)
    collector.start()
    wait(collector.started.values())
    yield collector
    collector.close()


def frame_of(collector: Collector) -> Frame:
    frame, pending = collector.preview()
    assert pending == ()
    return frame


def test_layout_fills_the_terminal_with_the_live_overviews_panels(demo):
    frame = frame_of(demo)
    for width, height in ((80, 24), (160, 48)):
        lines = overview(frame, width, height)
        assert len(lines) == height
        assert {clean.width(line) for line in lines} == {width}
        assert lines[0].startswith(" vramtop   DEMO  demo-gpu-host (simulated)")
        assert lines[1].startswith("╭─ GPUs (4) · sort #▲ · DEMO: simulated ─")
        gpu_rows = [line for line in lines[3:7]]
        assert [row[1:5].strip() for row in gpu_rows] == ["0", "1", "2", "3"]
        assert lines[7].startswith("╰─")
        assert lines[8].startswith(f"╭─ Models ({len(frame.models)}) · sort VRAM▼ ─")
        assert lines[-1] == " " * width  # the app's key bar: left to the app
        text = "\n".join(lines)
        # Processes only from 40 rows, as the live overview's .tall class has them.
        assert ("╭─ Processes (" in text) == (height >= 40)
        bottom = next(line for line in lines if "Host & sources" in line)
        assert bottom.startswith("╭─ Alerts")  # side by side, halves of the width
        assert bottom.index("╭─ Host & sources") == width - width // 2
        assert "● host ok  ● nvml ok" in text


def test_models_are_listed_by_vram_as_the_live_table_sorts_them(demo):
    frame = frame_of(demo)
    lines = overview(frame, 160, 48)
    start = next(i for i, line in enumerate(lines) if "Models (" in line) + 2
    names = [line[2:50].split("  ")[0].strip() for line in lines[start : start + 4]]
    by_vram = sorted(frame.models, key=lambda m: -(m.vram_bytes or 0))
    assert names == [m.name for m in by_vram[:4]]


def test_sources_still_asked_say_they_are_loading(demo):
    frame = frame_of(demo)
    lines = overview(frame, 200, 40, loading=("prometheus", "alerts"))
    text = "\n".join(lines)
    models_end = next(line for line in lines if "serving figures loading…" in line)
    assert models_end.startswith("╰─") and models_end.endswith("─╯")
    assert any(line.startswith("╰") and " loading… ─╯" in line for line in lines[-8:])
    assert "◌ prometheus loading…" in text and "◌ alerts loading…" in text


# -- the painter on a pseudo-terminal ------------------------------------------------------------


@pytest.fixture
def terminal() -> Iterator[tuple[int, int]]:
    master, slave = pty.openpty()
    yield master, slave
    os.close(master)
    os.close(slave)


def set_size(fd: int, columns: int, lines: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))


def read_all(master: int, until: str = "", timeout: float = 10.0) -> str:
    out = b""
    while select.select([master], [], [], timeout if until else 0.2)[0]:
        out += os.read(master, 65536)
        if until and until.encode() in out:
            break
    return out.decode("utf-8", "replace")


def painting(demo, slave: int) -> tuple[FirstPaint, list]:
    """A painter started on a 100x30 terminal, and the terminal's modes from before it."""
    set_size(slave, 100, 30)
    before = termios.tcgetattr(slave)
    paint = FirstPaint.start(demo, Settings(), {"TERM": "xterm"}, fd=slave, stdin=slave)
    assert paint is not None
    return paint, before


def test_the_painter_draws_then_stops_writing(demo, terminal):
    master, slave = terminal
    paint, before = painting(demo, slave)
    drawn = read_all(master, until=SYNC_OFF)  # the end of one screen
    assert drawn.startswith(SYNC_ON + ENTER)
    assert "GPUs (4) · sort #▲" in drawn and "Host & sources" in drawn
    # Keys wait for the app unechoed and uncooked: Enter stays "\r", as the app reads it.
    os.write(master, b"\r")
    assert os.read(slave, 16) == b"\r"
    assert read_all(master) == ""  # not echoed
    paint.stop()
    assert read_all(master) == ""  # nothing after stop()
    assert not termios.tcgetattr(slave)[3] & termios.ICANON  # the app takes this mode over
    paint.close()
    assert termios.tcgetattr(slave) == before


def test_a_failed_start_gives_the_terminal_back(demo, terminal):
    master, slave = terminal
    paint, before = painting(demo, slave)
    read_all(master, until=SYNC_OFF)
    paint.abandon()
    assert read_all(master, until=LEAVE) == LEAVE  # the main screen back, cursor shown
    assert termios.tcgetattr(slave) == before


@pytest.mark.parametrize(
    ("columns", "lines", "term"), [(79, 24, "xterm"), (80, 23, "xterm"), (100, 30, "dumb")]
)
def test_no_painter_on_a_small_or_dumb_terminal(demo, terminal, columns, lines, term):
    master, slave = terminal
    set_size(slave, columns, lines)
    assert FirstPaint.start(demo, Settings(), {"TERM": term}, fd=slave, stdin=slave) is None
    assert read_all(master) == ""


def test_no_painter_where_output_is_not_a_terminal(demo, terminal, tmp_path):
    _, slave = terminal
    with open(tmp_path / "out", "wb") as out:
        paint = FirstPaint.start(demo, Settings(), {"TERM": "xterm"}, fd=out.fileno(), stdin=slave)
    assert paint is None


def test_no_first_paint_of_a_fleet(terminal):
    # A fleet's first screen is the Hosts list, not this overview: nothing is drawn.
    collector = build_collector(Settings(), {}, demo="fleet", clock=lambda: T0)
    collector.start()
    wait(collector.started.values())
    master, slave = terminal
    set_size(slave, 100, 30)
    paint = FirstPaint.start(collector, Settings(), {"TERM": "xterm"}, fd=slave, stdin=slave)
    assert paint is not None
    paint._thread.join(timeout=10)
    assert not paint.entered and read_all(master) == ""
    paint.close()
    collector.close()
