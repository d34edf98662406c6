"""Per-process CPU %, RSS and age from psutil, for real child processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from vramtop.model import ProcessReading, freeze
from vramtop.sources.procs import FIRST_SAMPLE, GONE, ProcessInspector

SPIN = "import time\nend = time.time() + 120\nwhile time.time() < end: pass"


def rss_of(pid: int) -> int:
    """Resident memory from /proc directly, not through psutil."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize("proc_stat", [None, False], ids=["proc", "psutil"])
def test_cpu_rss_and_start_time_of_real_processes(proc_stat):
    before = time.time()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    spinner = subprocess.Popen([sys.executable, "-c", SPIN])
    after = time.time()
    inspector = ProcessInspector(proc_stat=proc_stat)
    try:
        time.sleep(0.5)  # both past interpreter start-up
        first = inspector.usage(sleeper.pid)
        inspector.usage(spinner.pid)
        time.sleep(0.5)
        idle, busy = inspector.usage(sleeper.pid), inspector.usage(spinner.pid)
        rss = rss_of(sleeper.pid)
        started = psutil.Process(sleeper.pid).create_time()
    finally:
        for child in (sleeper, spinner):
            child.kill()
            child.wait()
    assert first.cpu_percent is None and dict(first.reasons) == {"cpu_percent": FIRST_SAMPLE}
    assert first.started_at is not None and before - 1 <= first.started_at <= after + 1
    assert first.started_at == started  # psutil's create_time, whichever way it was read
    assert idle.rss_bytes == rss and idle.started_at == first.started_at
    assert idle.reasons == ()
    assert idle.cpu_percent is not None and idle.cpu_percent < 1.0
    assert busy.cpu_percent is not None and busy.cpu_percent > 1.0

    gone = inspector.usage(sleeper.pid)
    assert (gone.cpu_percent, gone.rss_bytes, gone.started_at) == (None, None, None)
    assert dict(gone.reasons) == dict.fromkeys(("cpu_percent", "rss_bytes", "started_at"), GONE)


def test_usage_fills_a_process_reading_and_keeps_its_reasons():
    inspector = ProcessInspector()
    p = ProcessReading(os.getpid(), 0, 1, unavailable=freeze({"sm_percent": "not supported"}))
    filled = inspector.usage(os.getpid()).apply(p)
    assert filled.rss_bytes and filled.started_at and filled.cpu_percent is None
    assert dict(filled.unavailable) == {"sm_percent": "not supported", "cpu_percent": FIRST_SAMPLE}
    again = inspector.usage(os.getpid()).apply(p)
    assert again.cpu_percent is not None and dict(again.unavailable) == {
        "sm_percent": "not supported"
    }
    inspector.forget_except(set())
    assert inspector.usage(os.getpid()).cpu_percent is None  # forgotten: a first look again
