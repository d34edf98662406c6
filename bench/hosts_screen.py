"""The Hosts screen's cost with a big fleet, headless (App.run_test):

    python bench/hosts_screen.py [--hosts 1000] [--frames 20] [--width 200] [--height 60]

Per frame: CPU and wall from posting a Frame to its screen drawn; per key: wall from a
cursor key to its screen drawn, while frames keep arriving. One JSON object on stdout.
Every frame moves each host's utilisation and p95, so every row changes (the worst case).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

from test_tui_fleet import big_fleet  # noqa: E402
from test_tui_support import Clock, ScriptedCollector, make_app  # noqa: E402

from vramtop.fleet import host_rows  # noqa: E402
from vramtop.history import History  # noqa: E402
from vramtop.tui.messages import FrameCollected  # noqa: E402
from vramtop.tui.screens.hosts import HostsScreen  # noqa: E402


def measure(hosts: int, frames: int, width: int, height: int) -> dict[str, object]:
    sequence = [big_fleet(hosts, step) for step in range(frames + 1)]
    clock = Clock(sequence[0].time)
    app = make_app(ScriptedCollector(sequence[:1]), clock=clock)
    cpu: list[float] = []
    wall: list[float] = []
    keys: list[float] = []

    async def go() -> None:
        async with app.run_test(size=(width, height)) as pilot:
            while not (isinstance(app.screen, HostsScreen) and app.screen.view is not None):
                await pilot.pause(0.01)
            await pilot.pause()
            for k, frame in enumerate(sequence[1:], start=2):
                clock.now = frame.time
                c, w = time.process_time(), time.perf_counter()
                app.post_message(FrameCollected(frame))
                while app.frames_received < k:
                    await pilot.pause()
                await pilot.pause()
                cpu.append((time.process_time() - c) * 1000)
                wall.append((time.perf_counter() - w) * 1000)
                w = time.perf_counter()
                await pilot.press("j")
                keys.append((time.perf_counter() - w) * 1000)

    asyncio.run(go())
    c = time.process_time()
    for frame in sequence:
        host_rows(frame)
    rows_ms = (time.process_time() - c) * 1000 / len(sequence)
    history = History()
    c = time.process_time()
    for frame in sequence:
        history.add(frame)
    history_ms = (time.process_time() - c) * 1000 / len(sequence)
    skip = min(3, len(cpu) // 2)
    return {
        "hosts": hosts,
        "size": f"{width}x{height}",
        "frames": len(cpu) - skip,
        "frame_cpu_ms": statistics.median(cpu[skip:]),
        "frame_cpu_max_ms": max(cpu[skip:]),
        "frame_wall_ms": statistics.median(wall[skip:]),
        "host_rows_ms": rows_ms,  # of frame_cpu_ms: vramtop.fleet, shared with the exports
        "history_add_ms": history_ms,  # of frame_cpu_ms: vramtop.history, every GPU's series
        "key_wall_ms": statistics.median(keys[skip:]),
        "key_wall_max_ms": max(keys[skip:]),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--width", type=int, default=200)
    ap.add_argument("--height", type=int, default=60)
    a = ap.parse_args()
    print(json.dumps(measure(a.hosts, a.frames, a.width, a.height)))


if __name__ == "__main__":
    main()
