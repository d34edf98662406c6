"""Measurements inside vramtop's own process, importing vramtop. Run by compare.py as

    python bench/inproc.py local  [--prometheus URL] [--refreshes N]   (in the fake NVML env)
    python bench/inproc.py scale  --prometheus URL --models 1,10 --hosts 1,10 [--refreshes N]
    python bench/inproc.py render [--frames N]

each printing one JSON object on its last line of stdout. ``local`` must start with the fake
NVML's LD_LIBRARY_PATH: glibc reads it only when a process starts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))
sys.path.insert(0, str(BENCH))

NO_CONFIG = "/nonexistent/vramtop-bench"  # no user config, themes or profiles

# -- HTTP requests, counted by path (every query vramtop sends goes through httpx.Client) --------

REQUESTS: Counter[str] = Counter()
_LOCK = threading.Lock()
_send = httpx.Client.send


def _counting_send(self: httpx.Client, request: httpx.Request, **kw: Any) -> httpx.Response:
    with _LOCK:
        REQUESTS[request.url.path] += 1
    return _send(self, request, **kw)


httpx.Client.send = _counting_send  # type: ignore[method-assign]


def _refresh(collect: Callable[[], Any]) -> tuple[Any, float, float, dict[str, int]]:
    """(frame, CPU ms of the whole process, wall ms, HTTP requests by path) of one refresh."""
    with _LOCK:
        REQUESTS.clear()
    cpu, wall = time.process_time(), time.perf_counter()
    frame = collect()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    with _LOCK:
        asked = dict(REQUESTS)
    return frame, cpu * 1000, wall * 1000, asked


def _shape(frame: Any) -> dict[str, int]:
    return {
        "gpus": len(frame.gpus),
        "processes": sum(len(g.processes) for g in frame.gpus),
        "models": len(frame.models),
        "hosts": len(frame.hosts),
        "alerts": len(frame.alerts),
        "errors": sum(s.state != "ok" for s in frame.sources),
    }


def _series(collect: Callable[[], Any], refreshes: int) -> dict[str, Any]:
    """The first refresh on its own (connections, profile detection), then the steady ones."""
    frame, cpu, wall, asked = _refresh(collect)
    first = {"cpu_ms": cpu, "wall_ms": wall, "requests": asked}
    steady = [_refresh(collect) for _ in range(refreshes)]
    frame = steady[-1][0]
    return {
        "first": first,
        "cpu_ms": statistics.median(s[1] for s in steady),
        "wall_ms": statistics.median(s[2] for s in steady),
        "wall_max_ms": max(s[2] for s in steady),
        "queries": sorted({s[3].get("/api/v1/query", 0) for s in steady}),
        "requests": sorted({sum(s[3].values()) for s in steady}),
        "frame": _shape(frame),
        "sources": {s.name: f"{s.state} {s.detail}".strip() for s in frame.sources},
    }


# -- local: NVML calls and collector cost against the fake driver ----------------------------------


def local(prometheus: str | None, refreshes: int) -> dict[str, Any]:
    import os

    from fakenvml import call_counts, reset_counts

    from vramtop.config import load
    from vramtop.wiring import build_collector

    lib_dir = os.environ["LD_LIBRARY_PATH"].split(os.pathsep)[0]
    lib = Path(lib_dir) / "libnvidia-ml.so.1"
    env = {"XDG_CONFIG_HOME": NO_CONFIG}
    collector = build_collector(load(env=env, flags={"interval": 1.0}), env)
    calls = []
    for _ in range(refreshes + 1):
        reset_counts(lib)
        collector.collect()
        calls.append(call_counts(lib))
    out: dict[str, Any] = {"nvml_calls": calls}
    out["local"] = _series(collector.collect, refreshes)
    if prometheus is None:  # NVML and host only: no Prometheus needed
        return out
    full = build_collector(load(env=env, flags={"prometheus_url": prometheus}), env)
    full.remote_every = 0.0  # each of these refreshes reads Prometheus: what one such costs
    out["local+prometheus"] = _series(full.collect, refreshes)
    return out


# -- scale: queries per refresh and cost for N models and H hosts ---------------------------------


def scale(prometheus: str, models: list[int], hosts: list[int], refreshes: int) -> dict[str, Any]:
    from vramtop import wiring
    from vramtop.collector import Collector
    from vramtop.config import load
    from vramtop.sources.host import HostSource

    env = {"XDG_CONFIG_HOME": NO_CONFIG}
    groups = [(f"{n} models", f"m{n}") for n in models]
    groups += [(f"{h} hosts x 8 GPUs", f"h{h}-[0-9]+") for h in hosts]
    out = {}
    for label, instance in groups:
        rss = _rss()
        settings = load(env=env, flags={"prometheus_url": prometheus, "instance": instance})
        sources = wiring.remote_sources(settings, env, None)
        collector = Collector(host=HostSource(), remote=sources)
        out[label] = _series(collector.collect, refreshes)
        # What holding this fleet's latest Frame (and the sources' state) costs in memory.
        out[label]["rss_growth_mib"] = (_rss() - rss) / 2**20
        for source in sources:
            source.close()  # type: ignore[attr-defined]
        del collector, sources
    return out


def _rss() -> int:
    import gc

    import psutil

    gc.collect()
    return psutil.Process().memory_info().rss


# -- render: the live view's cost per frame, headless ---------------------------------------------


class _Frames:
    def __init__(self, first: Any) -> None:
        self.first = first

    def collect(self) -> Any:
        return self.first


def render(frames: int, width: int, height: int) -> dict[str, Any]:
    from record_size import Host

    from vramtop.config import Settings
    from vramtop.tui.factory import build_app
    from vramtop.tui.messages import FrameCollected

    host = Host()
    sequence = [host.frame(k) for k in range(frames + 1)]
    now = [sequence[0].time]
    env = {"XDG_CONFIG_HOME": NO_CONFIG}
    app = build_app(
        Settings(interval=3600.0),
        _Frames(sequence[0]),
        env=env,
        clock=lambda: now[0],
        cursor_blink=False,
    )
    cpu: list[float] = []
    wall: list[float] = []

    async def go() -> None:
        async with app.run_test(size=(width, height)) as pilot:
            while app.frames_received < 1:
                await pilot.pause(0.01)
            await pilot.pause()
            for k, frame in enumerate(sequence[1:], start=2):
                now[0] = frame.time
                c, w = time.process_time(), time.perf_counter()
                app.post_message(FrameCollected(frame))
                while app.frames_received < k:
                    await pilot.pause()
                await pilot.pause()  # layout, compositing
                cpu.append((time.process_time() - c) * 1000)
                wall.append((time.perf_counter() - w) * 1000)

    start = time.perf_counter()
    asyncio.run(go())
    skip = min(10, len(cpu) // 2)  # the first frames fill caches and the history
    steady = sorted(cpu[skip:])
    return {
        "frames": len(steady),
        "size": f"{width}x{height}",
        "cpu_ms": statistics.median(steady),
        "cpu_p90_ms": steady[int(0.9 * (len(steady) - 1))],
        "cpu_max_ms": steady[-1],
        "wall_ms": statistics.median(wall[skip:]),
        "total_s": time.perf_counter() - start,
    }


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    lo = sub.add_parser("local")
    lo.add_argument("--prometheus")
    lo.add_argument("--refreshes", type=int, default=10)
    sc = sub.add_parser("scale")
    sc.add_argument("--prometheus", required=True)
    sc.add_argument("--models", type=_ints, default=[1, 10, 100, 1000])
    sc.add_argument("--hosts", type=_ints, default=[1, 10, 100])
    sc.add_argument("--refreshes", type=int, default=5)
    re_ = sub.add_parser("render")
    re_.add_argument("--frames", type=int, default=120)
    re_.add_argument("--width", type=int, default=200)
    re_.add_argument("--height", type=int, default=60)
    a = ap.parse_args()
    if a.what == "local":
        result = local(a.prometheus, a.refreshes)
    elif a.what == "scale":
        result = scale(a.prometheus, a.models, a.hosts, a.refreshes)
    else:
        result = render(a.frames, a.width, a.height)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
