"""What reading GPU health costs per refresh: NVML calls and collector CPU on the bench's 8-GPU
fake host, for a revision from before health (exported with ``git archive``) and for this tree.
Run as

    python bench/health_cost.py [--before REV] [--refreshes N] [--rounds R]

This tree's ``bench/inproc.py local`` runs with each tree's ``vramtop`` first on the path,
against the same fake host and sleepers,
alternating, ``R`` rounds each; CPU is the process's (every thread: collector workers and the
health threads) per refresh, the median of each round's median. Prints a table, then one JSON
object on its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(BENCH), str(ROOT / "tests")]
BEFORE = "631bfb6"  # main just before the health-core merge


def export(rev: str, into: Path) -> Path:
    tar = into / "before.tar"
    with open(tar, "wb") as f:
        subprocess.run(["git", "-C", str(ROOT), "archive", rev], stdout=f, check=True)
    tree = into / "before"
    with tarfile.open(tar) as t:
        t.extractall(tree, filter="data")
    return tree


def run_local(tree: Path, env: dict[str, str], refreshes: int) -> dict:
    env = dict(env, PYTHONPATH=str(tree))
    out = subprocess.run(
        [sys.executable, str(BENCH / "inproc.py"), "local", "--refreshes", str(refreshes)],
        env=env,
        capture_output=True,
        text=True,
        cwd=tree,
    )
    if out.returncode:
        raise SystemExit(f"{tree}/bench/inproc.py failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def steady_calls(calls: list[dict[str, int]]) -> dict[str, float]:
    later = calls[2:] or calls[1:]
    names = {n for c in later for n in c}
    return {n: statistics.mean(c.get(n, 0) for c in later) for n in sorted(names)}


def main() -> None:
    from host import FakeHost

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default=BEFORE)
    ap.add_argument("--refreshes", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        trees = {"before": export(args.before, Path(d)), "after": ROOT}
        host = FakeHost(Path(d) / "host")
        host.workdir.mkdir()
        host.start()
        try:
            env = host.env(dict(os.environ))
            env["XDG_CONFIG_HOME"] = "/nonexistent/vramtop-bench"
            runs: dict[str, list[dict]] = {k: [] for k in trees}
            for _ in range(args.rounds):
                for label, tree in trees.items():
                    runs[label].append(run_local(tree, env, args.refreshes))
        finally:
            host.stop()
    result = {}
    for label, rs in runs.items():
        calls = steady_calls(rs[-1]["nvml_calls"])
        result[label] = {
            "rev": args.before if label == "before" else "this tree",
            "nvml_calls_first": rs[-1]["nvml_calls"][0].get("*", 0),
            "nvml_calls_per_refresh": calls.pop("*", 0),
            "by_symbol": {n: v for n, v in calls.items() if v},
            "cpu_ms": statistics.median(r["local"]["cpu_ms"] for r in rs),
            "cpu_ms_rounds": [round(r["local"]["cpu_ms"], 2) for r in rs],
            "wall_ms": statistics.median(r["local"]["wall_ms"] for r in rs),
        }
    b, a = result["before"], result["after"]
    health_call = "nvmlDeviceGetCurrentClocksEventReasons"
    assert health_call not in b["by_symbol"] and health_call in a["by_symbol"], "wrong trees"
    print(f"{'':28} | {'before ' + args.before:>14} | {'after':>8}")
    first = "NVML calls, first refresh"
    print(f"{first:28} | {b['nvml_calls_first']:>14} | {a['nvml_calls_first']:>8}")
    print(
        f"{'NVML calls per refresh':28} | {b['nvml_calls_per_refresh']:>14g} |"
        f" {a['nvml_calls_per_refresh']:>8g}"
    )
    print(f"{'collector CPU per refresh':28} | {b['cpu_ms']:>11.1f} ms | {a['cpu_ms']:>5.1f} ms")
    added = {n: v - b["by_symbol"].get(n, 0) for n, v in a["by_symbol"].items()}
    for n, v in sorted(added.items()):
        if v:
            print(f"  + {n}: {v:g} per refresh")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
