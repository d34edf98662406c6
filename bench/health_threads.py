"""What vramtop's health threads cost while nothing happens: CPU seconds of the event thread and
of the PCIe sampler over an idle window, read from /proc/self/task/<tid>/stat, on the bench's
8-GPU fake host. Run as

    python bench/health_threads.py [SECONDS]

(it starts the fake host itself). Prints one JSON object. The fake's nvmlEventSetWait_v2 wakes
every 50 ms to notice a rewritten scenario, which the real driver does not: its figure is an
upper bound for the real one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent / "tests")]

INSIDE = """
import json, os, sys, threading, time
from fakenvml import call_counts, reset_counts
from vramtop.sources.nvml import NvmlSource

def cpu(tid):
    with open(f"/proc/self/task/{tid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

lib = os.environ["LD_LIBRARY_PATH"].split(os.pathsep)[0] + "/libnvidia-ml.so.1"
seconds = float(sys.argv[1])
nvml = NvmlSource()
nvml.poll()
nvml.poll()  # the second poll starts the threads
time.sleep(1.0)  # past registration and the first PCIe round
threads = {t.name: t.native_id for t in threading.enumerate() if t.name.startswith("vramtop-")}
before = {n: cpu(tid) for n, tid in threads.items()}
reset_counts(lib)
time.sleep(seconds)
counts = call_counts(lib)
after = {n: cpu(tid) for n, tid in threads.items()}
nvml.close()
print(json.dumps({
    "seconds": seconds,
    "cpu_seconds": {n: round(after[n] - before[n], 3) for n in threads},
    "calls": {k: v for k, v in counts.items() if v and k != "*"},
}))
"""


def main() -> None:
    from host import FakeHost

    seconds = sys.argv[1] if len(sys.argv) > 1 else "10"
    with tempfile.TemporaryDirectory() as d:
        host = FakeHost(Path(d))
        host.start()
        try:
            env = host.env(dict(os.environ))
            env["PYTHONPATH"] = os.pathsep.join([str(BENCH.parent), str(BENCH.parent / "tests")])
            out = subprocess.run(
                [sys.executable, "-c", INSIDE, seconds],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
        finally:
            host.stop()
    print(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
