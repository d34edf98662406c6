"""How big recordings get and how fast they are written and replayed.

    python bench/record_size.py [--hours 24]

Rows:
  8-GPU host    8 GPUs, 64 processes, 20 models at 2 s for --hours (default a full day): GPU
                figures move every frame (utilization, temperature, power in mW, memory in 2 MiB
                pages); a few processes grow or shrink each minute and one restarts every two
                hours; model figures (latency quantiles, rates, queue, KV cache) change at each
                Prometheus scrape (15 s), at full float precision; host CPU, memory and load move
                every frame; an alert goes pending then firing every ~47 minutes; Prometheus goes
                stale for a minute every hour.
  8-GPU noisy   the same, but every model and process figure changes every frame (an upper
                bound; 1 hour, scaled to a day).
  demo host     the real demo collector (4 GPUs, 8 processes), 300 frames.

Seek, open and RSS are measured on the first row's recording, in a fresh process for RSS.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from vramtop.model import (
    AlertReading,
    Frame,
    GpuReading,
    HostReading,
    ModelReading,
    ProcessReading,
    SourceStatus,
    freeze,
)
from vramtop.record import Recorder, Recording

MIB, GIB = 2**20, 2**30
T0 = 1795000000.0
STEP = 2.0
FAMILIES = ("vllm", "vllm", "sglang", "tgi", "triton")


@dataclass
class Proc:
    pid: int
    gpu: int
    model: int
    memory: int
    command: str


class Host:
    """A deterministic 8-GPU inference host; ``frame(k)`` is its state at frame ``k``."""

    def __init__(self, seed: int = 7, noisy: bool = False) -> None:
        self.rng = random.Random(seed)
        self.noisy = noisy
        self.names = [
            f"model-{i:02d}-{['llama', 'qwen', 'mistral', 'bge'][i % 4]}" for i in range(20)
        ]
        self.procs: list[Proc] = []
        slots = [g for g in range(8) for _ in range(8)]  # 8 processes per GPU
        owners = [0] * 4 + [1] * 4 + [2 + i % 18 for i in range(56)]  # two TP-4 models
        for n, (gpu, owner) in enumerate(zip(slots, owners, strict=True)):
            self.procs.append(self._proc(10000 + n * 7, gpu, owner))
        self.util = [self.rng.uniform(20, 90) for _ in range(8)]
        self.figures: list[dict[str, float]] = [self._figures(m) for m in range(20)]
        self.next_pid = 20000

    def _proc(self, pid: int, gpu: int, model: int) -> Proc:
        name = self.names[model]
        family = FAMILIES[model % len(FAMILIES)]
        command = (
            f"/opt/venv/bin/python3 -m {family}.entrypoints.server --model /models/{name} "
            f"--served-model-name {name} --port {8000 + model} --api-key ***"
        )
        return Proc(
            pid, gpu, model, int(self.rng.uniform(4, 9.5) * GIB) // (2 * MIB) * 2 * MIB, command
        )

    def _figures(self, m: int) -> dict[str, float]:
        r = self.rng
        p50 = r.lognormvariate(-2.5, 0.4)
        return {
            "p50": p50,
            "p95": p50 * r.uniform(2, 3),
            "p99": p50 * r.uniform(3, 5),
            "rps": r.uniform(1, 80),
            "err": r.uniform(0, 0.002),
            "queue": float(r.randint(0, 12)),
            "ttft": r.lognormvariate(-1.5, 0.3),
            "kv": r.uniform(0.2, 0.9),
        }

    def advance(self, k: int) -> None:
        r = self.rng
        for p in self.procs:
            if self.noisy or r.random() < 0.03:
                p.memory = max(GIB, p.memory + r.randint(-8, 8) * 2 * MIB)
        if k and k % 3600 == 0:  # a process restarts every two hours
            i = r.randrange(len(self.procs))
            old = self.procs[i]
            self.procs[i] = self._proc(self.next_pid, old.gpu, old.model)
            self.next_pid += 13
        if self.noisy or k % 8 == 0:  # Prometheus scrapes every 15 s
            self.figures = [self._figures(m) for m in range(20)]
        self.util = [min(100.0, max(0.0, u + r.uniform(-6, 6))) for u in self.util]

    def frame(self, k: int) -> Frame:
        self.advance(k)
        t = T0 + k * STEP + self.rng.uniform(0, 0.01)
        r = self.rng
        gpus = []
        for g in range(8):
            procs = tuple(
                ProcessReading(
                    p.pid, g, p.memory, "compute", "svc-infer", "python3", p.command,
                    self.names[p.model], "cmdline",
                )
                for p in self.procs
                if p.gpu == g
            )  # fmt: skip
            util = round(self.util[g])
            used = (
                sum(p.used_memory_bytes or 0 for p in procs) + 600 * MIB + r.randint(0, 3) * 2 * MIB
            )
            gpus.append(
                GpuReading(
                    g, f"GPU-8c0{g}a1b2-0000-4000-8000-0000000000{g:02d}", "NVIDIA H100 80GB HBM3",
                    "ok", min(used, 80 * GIB), 80 * GIB, 512 * MIB, float(util),
                    float(round(util * 0.6)), float(45 + util // 4),
                    round(120 + 5.8 * util + r.uniform(-3, 3), 3), 700.0, False, (), procs,
                )
            )  # fmt: skip
        models = []
        for m, name in enumerate(self.names):
            f = self.figures[m]
            mine = [p for p in self.procs if p.model == m]
            models.append(
                ModelReading(
                    name, sum(p.memory for p in mine), tuple(p.pid for p in mine),
                    tuple(sorted({p.gpu for p in mine})), ("cmdline",), f["p50"], f["p95"],
                    f["p99"], f["rps"], f["err"], f["queue"], (f"10.0.0.12:{8000 + m}",),
                    FAMILIES[m % len(FAMILIES)],
                    freeze({"ttft_p95_seconds": f["ttft"], "kv_cache_usage_ratio": f["kv"]}),
                )
            )  # fmt: skip
        models.sort(key=lambda x: -(x.vram_bytes or 0))
        phase = (k * STEP) % 2820  # an incident every 47 minutes
        alerts = ()
        if phase < 360:
            alerts = (
                AlertReading(
                    "ModelQueueBacklog", "warning", "pending" if phase < 30 else "firing",
                    "Model model-03-bge has more than 50 requests queued",
                    freeze({"model": "model-03-bge", "instance": "10.0.0.12:8003"}),
                    T0 + k * STEP - phase,
                ),
            )  # fmt: skip
        stale = (k * STEP) % 3600 < 60
        since = T0 + k * STEP - (k * STEP) % 3600
        sources = (
            SourceStatus("host", "ok"),
            SourceStatus("nvml", "ok"),
            SourceStatus("prometheus", "stale", "no answer within 5 s", since)
            if stale
            else SourceStatus("prometheus", "ok"),
            SourceStatus("alerts", "ok"),
        )
        host = HostReading(
            "gpu-node-17", round(30 + 10 * math.sin(k / 200) + r.uniform(-2, 2), 1), 128,
            (600 * GIB + r.randint(0, 2**20) * 4096), 2048 * GIB,
            (round(24 + r.uniform(-1, 1), 2), round(23 + r.uniform(-0.3, 0.3), 2), 22.5),
            "/", 1210 * GIB + k * 4096, 3500 * GIB,
        )  # fmt: skip
        return Frame(
            t, host, tuple(gpus), tuple(models), alerts, sources, driver_version="550.54.15"
        )


def demo_frames(n: int) -> list[Frame]:
    from vramtop.config import Settings
    from vramtop.wiring import build_collector

    now = [T0]
    collector = build_collector(Settings(), {}, demo=True, clock=lambda: now[0])
    frames = []
    for k in range(n):
        now[0] = T0 + k * STEP
        frames.append(collector.collect())
    return frames


def record(path: str, frames) -> tuple[int, float]:
    """(frames written, CPU µs per append)."""
    cpu = 0
    n = 0
    with Recorder(path, interval=STEP) as rec:
        for frame in frames:
            start = time.thread_time_ns()
            rec.append(frame)
            cpu += time.thread_time_ns() - start
            n += 1
    return n, cpu / n / 1000


def row(name: str, path: str, frames) -> list[str]:
    n, us = record(path, frames)
    size = os.path.getsize(path)
    per = size / n
    return [name, f"{n}", f"{per:.0f}", f"{per * 86400 / STEP / 1e6:.1f}", f"{us:.0f}"]


def seek_figures(path: str) -> dict[str, str]:
    r = random.Random(1)
    start = time.perf_counter()
    rec = Recording.open(path)
    opened = time.perf_counter() - start
    n = len(rec)
    picks = [r.randrange(n) for _ in range(200)]
    waits = []
    for i in picks:
        start = time.perf_counter()
        rec.frame(i)
        waits.append(time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(1000, 1300):
        rec.frame(i)
    step = (time.perf_counter() - start) / 300
    start = time.perf_counter()
    for _ in range(10000):
        rec.index_at(r.uniform(rec.start, rec.end))
    at = (time.perf_counter() - start) / 10000
    rec.close()
    return {
        "open": f"{opened * 1000:.0f} ms",
        "seek to a random frame (mean / max)": f"{sum(waits) / len(waits) * 1000:.1f} / "
        f"{max(waits) * 1000:.1f} ms",
        "step to the next frame": f"{step * 1e6:.0f} µs",
        "index_at": f"{at * 1e6:.1f} µs",
        "RSS added by open + 200 seeks": rss_added(path),
    }


_RSS = """
import random, sys
def rss():
    return int(next(l for l in open('/proc/self/status') if l.startswith('VmRSS')).split()[1])
from vramtop.record import Recording
import vramtop.model, vramtop.record.codec
before = rss()
rec = Recording.open(sys.argv[1])
for _ in range(200):
    rec.frame(random.randrange(len(rec)))
print(rss() - before)
"""


def rss_added(path: str) -> str:
    out = subprocess.run([sys.executable, "-c", _RSS, path], capture_output=True, text=True)
    return f"{int(out.stdout) / 1024:.1f} MiB" if out.returncode == 0 else out.stderr.strip()


def table(rows: list[list[str]], head: list[str]) -> str:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = [
        " | ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in [head, *rows]
    ]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0)
    opts = ap.parse_args()
    n = int(opts.hours * 3600 / STEP)
    with tempfile.TemporaryDirectory() as tmp:
        day = os.path.join(tmp, "day.rec")
        host = Host()
        noisy = Host(noisy=True)
        rows = [
            row(f"8-GPU host, {opts.hours:g} h", day, (host.frame(k) for k in range(n))),
            row(
                "8-GPU noisy, 1 h",
                os.path.join(tmp, "noisy.rec"),
                (noisy.frame(k) for k in range(1800)),
            ),
            row("demo host", os.path.join(tmp, "demo.rec"), demo_frames(300)),
        ]
        head = ["recording", "frames", "bytes/frame", "MB/day at 2 s", "write CPU µs/frame"]
        print(table(rows, head))
        print()
        seek = seek_figures(day)
        print(table([[k, v] for k, v in seek.items()], [f"replay, {opts.hours:g} h recording", ""]))


if __name__ == "__main__":
    main()
