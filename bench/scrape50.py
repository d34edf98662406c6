"""`--scrape` of a fleet without Prometheus: N vramtop exporters' /metrics read concurrently by
the real ScrapeSource, refresh wall measured.

    python bench/compare.py --only scrape50     as a phase of the benchmark
    python bench/scrape50.py [--targets 50]     alone (no Prometheus, no tmux)

The exporters are light static servers in ONE child process, each on its own loopback address
(127.0.1.x, so each is its own host) serving what a `vramtop --serve-metrics` of an 8-GPU host
with 4 models serves. Fifty fake-NVML vramtop children would measure the 2-core machine's
scheduler, not the scrape. The measuring process holds only vramtop's side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plan import Bench

BENCH = Path(__file__).resolve().parent
GIB = 2**30


def exposition(host: int) -> bytes:
    """One exporter's answer: 8 GPUs, 4 models of 20 (shared across hosts) on 2 GPUs each."""
    out = ["# TYPE vramtop_build_info gauge", 'vramtop_build_info{version="0.1.0"} 1']
    name = "NVIDIA H100 80GB HBM3"
    for metric, value in (
        ("vramtop_gpu_memory_used_bytes", lambda g: (40 + g) * GIB),
        ("vramtop_gpu_memory_total_bytes", lambda g: 80 * GIB),
        ("vramtop_gpu_utilization_ratio", lambda g: (host * 7 + g * 11) % 100 / 100),
    ):
        out.append(f"# TYPE {metric} gauge")
        for g in range(8):
            uuid = f"GPU-{host:04x}0000-{g:04x}"
            out.append(f'{metric}{{gpu="{g}",gpu_uuid="{uuid}",name="{name}"}} {value(g)}')
    out.append("# TYPE vramtop_model_vram_bytes gauge")
    for m in range(4):
        model = f"fleet-model-{(host + m * 5) % 20}"
        for g in (2 * m, 2 * m + 1):
            uuid = f"GPU-{host:04x}0000-{g:04x}"
            out.append(
                f'vramtop_model_vram_bytes{{model="{model}",gpu="{g}",gpu_uuid="{uuid}"}} '
                f"{(30 + m) * GIB}"
            )
    out.append("# TYPE vramtop_source_up gauge")
    out.append('vramtop_source_up{source="nvml"} 1')
    return ("\n".join(out) + "\n").encode()


def serve(n: int) -> None:
    """The child: N servers, their URLs as one JSON line, then serve until stdin closes."""
    urls = []
    for i in range(n):
        body = exposition(i)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as prometheus_client's server does
            text = body

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/plain; version=0.0.4")
                self.send_header("content-length", str(len(self.text)))
                self.end_headers()
                self.wfile.write(self.text)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer((f"127.0.1.{i + 1}", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        urls.append(f"http://127.0.1.{i + 1}:{server.server_address[1]}/metrics")
    print(json.dumps(urls), flush=True)
    sys.stdin.read()


def measure(urls: list[str], refreshes: int) -> dict:
    """The first reading (two scrapes a gap apart) and ``refreshes`` steady ones."""
    from vramtop.profiles import load_all
    from vramtop.sources.http import Endpoint
    from vramtop.sources.scrape import ScrapeSource

    src = ScrapeSource([Endpoint(u, timeout=5.0) for u in urls], list(load_all().values()))
    try:
        t = time.perf_counter()
        first = src.poll()
        first_wall = time.perf_counter() - t
        walls, cpus = [], []
        for _ in range(refreshes):
            time.sleep(0.2)
            t, c = time.perf_counter(), time.process_time()
            reading = src.poll()
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
    finally:
        src.close()
    down = [h for h in (*first.hosts, *reading.hosts) if not h.up]
    if down:
        raise RuntimeError(f"{len(down)} exporters did not answer: {down[0].detail}")
    walls.sort()
    return {
        "targets": len(urls),
        "first_s": first_wall,
        "median_s": statistics.median(walls),
        "p95_s": walls[min(len(walls) - 1, round(0.95 * (len(walls) - 1)))],
        "max_s": walls[-1],
        "cpu_s": statistics.median(cpus),
        "refreshes": refreshes,
        "hosts": len(reading.hosts),
        "gpus": len(reading.gpus),
        "models": len(reading.models),
    }


def run(n: int, refreshes: int) -> dict:
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "serve", str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        urls = json.loads(child.stdout.readline())
        return measure(urls, refreshes)
    finally:
        child.kill()
        child.wait()


HEAD = ["exporters", "first refresh", "wall median", "wall p95", "wall max", "CPU median"]
HEAD += ["refreshes", "frame: hosts / GPUs / models"]


def row(r: dict) -> list[object]:
    return [
        r["targets"],
        f"{r['first_s'] * 1000:.0f} ms",
        f"{r['median_s'] * 1000:.0f} ms",
        f"{r['p95_s'] * 1000:.0f} ms",
        f"{r['max_s'] * 1000:.0f} ms",
        f"{r['cpu_s'] * 1000:.0f} ms",
        r["refreshes"],
        f"{r['hosts']} / {r['gpus']} / {r['models']}",
    ]


NOTE = (
    "ScrapeSource.poll() against static exporters (8 GPUs, 4 models each) on 127.0.1.x, all "
    "targets at once, each within --timeout. 'first refresh' holds the two scrapes 1 s apart "
    "that rates need. CPU = this process (parsing and merging), the servers run in a child."
)


def phase_scrape50(b: Bench) -> None:
    from report import table

    n = 50 if b.plan.peers else 10  # --short: a smaller fleet
    r = run(n, max(5, 2 * b.plan.refreshes))
    b.results["scrape50"] = r
    title = f"--scrape of {n} exporters without Prometheus (bench/scrape50.py)"
    b.report.section(title, table(HEAD, [row(r)]), NOTE)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", nargs="?", default="measure", choices=("measure", "serve"))
    ap.add_argument("count", nargs="?", type=int, default=50)
    ap.add_argument("--targets", type=int, default=50)
    ap.add_argument("--refreshes", type=int, default=20)
    args = ap.parse_args()
    if args.mode == "serve":
        serve(args.count)
        return 0
    sys.path.insert(0, str(BENCH))
    from report import table

    print(table(HEAD, [row(run(args.targets, args.refreshes))]))
    print("\n" + NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
