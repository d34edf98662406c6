"""The /metrics parser bench still runs and prints its table; no timing is asserted (the
figures are in the README's Performance section)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "parse_exposition.py"


def test_parse_bench_prints_every_parser():
    out = subprocess.run(
        [sys.executable, str(BENCH), "--mb", "0.05", "--runs", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("text format 0.06 MB") and "4 models" in lines[0], lines[0]
    assert lines[1] == "the parsers read the same samples: yes"
    assert lines[2].split("|")[0].strip() == "parser"
    rows = [line.split("|")[0].strip() for line in lines[3:]]
    assert rows == [
        "hand-written regex parser (old)",
        "prometheus_client text parser",
        "vramtop read() on it",
        "prometheus_client OpenMetrics parser",
        "vramtop read() on it",
    ]
