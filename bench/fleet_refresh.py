"""One fleet's PromSource refresh, two vramtop trees alternately against the same Prometheus:
a before/after on a shared machine, where two separate benchmark runs see different loads.

    python bench/fleet_refresh.py --hosts 1000 --old /tmp/old-tree [--rounds 2 --refreshes 3]

``--old``: a directory holding another ``vramtop`` package (``git archive <commit> vramtop |
tar -x -C DIR``). Per refresh: wall, this process's CPU and Prometheus's CPU (which includes its
own scraping of the fleet, about 0.4 of a core here, in both trees alike).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent

_CHILD = r"""
import json, sys, time
import psutil
from vramtop import wiring
from vramtop.config import load
url, hosts, refreshes, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
prom = psutil.Process(pid)
env = {"XDG_CONFIG_HOME": "/nonexistent/vramtop-bench"}
flags = {"prometheus_url": url, "instance": f"h{hosts}-[0-9]+", "timeout": 30}
(src,) = [s for s in wiring.remote_sources(load(env=env, flags=flags), env, None)
          if s.name == "prometheus"]
src.poll()  # detection
out = []
for _ in range(refreshes):
    p, w, c = sum(prom.cpu_times()[:2]), time.perf_counter(), time.process_time()
    r = src.poll()
    out.append({"wall_ms": (time.perf_counter() - w) * 1000,
                "cpu_ms": (time.process_time() - c) * 1000,
                "prometheus_cpu_ms": (sum(prom.cpu_times()[:2]) - p) * 1000,
                "requests": r.queries, "gpus": len(r.gpus), "note": r.note})
    time.sleep(1)
print(json.dumps(out))
"""


def _prometheus_pid(work: Path) -> int:
    import psutil

    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if cmd and cmd[0].endswith("prometheus") and str(work) in " ".join(cmd):
            return p.pid
    raise RuntimeError("the benchmark's Prometheus is not running")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=1000)
    ap.add_argument("--old", required=True, help="a directory with the other vramtop package")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--refreshes", type=int, default=3)
    a = ap.parse_args()
    sys.path.insert(0, str(BENCH))
    sys.path.insert(0, str(REPO / "tests"))
    from host import FakeHost, Serving

    with tempfile.TemporaryDirectory(prefix="vramtop-fleet-") as tmp:
        work = Path(tmp)
        serving = Serving(work, FakeHost(work / "host"), 15)
        serving.start()
        try:
            serving.add_fleet((), (a.hosts,))
            serving.wait_fleet()
            pid = _prometheus_pid(work)
            trees = {"old": a.old, "new": str(REPO)}
            runs: dict[str, list[dict]] = {name: [] for name in trees}
            for _ in range(a.rounds):
                for name, tree in trees.items():
                    env = {**os.environ, "PYTHONPATH": tree}  # cwd=tmp: not this checkout
                    argv = [sys.executable, "-c", _CHILD, serving.url, str(a.hosts)]
                    argv += [str(a.refreshes), str(pid)]
                    done = subprocess.run(
                        argv, env=env, capture_output=True, text=True, check=True, cwd=tmp
                    )
                    runs[name] += json.loads(done.stdout.strip().splitlines()[-1])
        finally:
            serving.stop()
    print(f"{a.hosts} hosts x 8 GPUs, {a.rounds} rounds of {a.refreshes} refreshes, alternately")
    print("tree | wall median | wall max | vramtop CPU | Prometheus CPU | requests | GPUs")
    for name, rs in runs.items():

        def med(key: str, rs: list[dict] = rs) -> float:
            return statistics.median(r[key] for r in rs)

        print(
            f"{name} | {med('wall_ms'):.0f} ms | {max(r['wall_ms'] for r in rs):.0f} ms | "
            f"{med('cpu_ms'):.0f} ms | {med('prometheus_cpu_ms'):.0f} ms | "
            f"{sorted({r['requests'] for r in rs})} | {sorted({r['gpus'] for r in rs})}"
        )


if __name__ == "__main__":
    main()
