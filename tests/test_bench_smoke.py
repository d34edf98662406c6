"""The benchmark still runs: ``bench/compare.py --short`` exits 0 and prints every table.

No timing is asserted: this only keeps the script working (real fake-NVML host, real
Prometheus, vramtop under tmux). The full comparison with nvitop, gpustat, btop and htop is
``python bench/compare.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SECTIONS = (
    "## Live view at 1 s",
    "## One-shot frame",
    "## Start-up: --version and --help",
    "## Time to the first complete frame",
    "## NVML calls per refresh",
    "## Collector cost per refresh",
    "## TUI render cost per frame",
    "## Scaling against the local Prometheus",
    "## --scrape of 10 exporters without Prometheus",
    "## Recording size and replay",
    "Hosts screen, headless",
    "## Targets",
)


def test_bench_short_run_prints_its_tables(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "compare.py"), "--short", "--results", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
    )
    assert out.returncode == 0, f"stdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-3000:]}"
    for title in SECTIONS:
        assert title in out.stdout, f"{title!r} missing from:\n{out.stdout[-3000:]}"
    assert "vramtop --once" in out.stdout
    assert "nvmlDeviceGetMemoryInfo_v2" in out.stdout
    report = (tmp_path / "report.txt").read_text()
    assert "## Targets" in report
    assert "paused screen < 0.3 % CPU, with Prometheus" in report  # the paused window ran
    assert (tmp_path / "pane-vramtop.txt").read_text().count("H100") >= 8
