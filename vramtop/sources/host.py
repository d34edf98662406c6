"""The host itself: CPU, memory, load and the disk of ``/``, from /proc (procfs) on Linux and
through psutil elsewhere.

CPU % is the whole host's busy share between two snapshots (cpu_window): since the previous
poll, or for the first poll since the command line chose a local mode (at least MIN_CPU_WINDOW).
"""

from __future__ import annotations

import os
import time

from vramtop.clean import one_line
from vramtop.model import HostReading, freeze
from vramtop.sources import procfs
from vramtop.sources.cpu_window import busy_percent, snapshot, take_early

# CPU times count in 10 ms ticks: a window shorter than this is mostly noise.
MIN_CPU_WINDOW = 0.05


class HostSource:
    name = "host"

    def __init__(self, disk_path: str = "/", hostname: str | None = None) -> None:
        self._disk_path = disk_path
        # gethostname(2) is the kernel's nodename: no socket module needed for it
        self._hostname = hostname or os.uname().nodename
        # The first poll (often a --once) measures since the command line opened the window,
        # or since now when nothing did.
        self._window = take_early()
        self._first = True

    @property
    def hostname(self) -> str:
        return self._hostname

    def poll(self) -> HostReading:
        reasons: dict[str, str] = {}
        if self._first:
            self._first = False
            wait = MIN_CPU_WINDOW - (time.monotonic() - self._window[0])
            if wait > 0:  # only for a window opened just now (a source built and polled at once)
                time.sleep(wait)
        now = snapshot()
        cpu = busy_percent(self._window[1], now[1])
        self._window = now  # later polls measure since the previous one
        mem_total, mem_available, cpu_count = _memory_and_cpus()
        try:
            load: tuple[float, float, float] | None = os.getloadavg()
        except OSError as err:
            load, reasons["load_average"] = None, one_line(err)
        try:
            disk_used, disk_total = procfs.disk(self._disk_path)
        except OSError as err:
            disk_used = disk_total = None
            reasons["disk_used_bytes"] = reasons["disk_total_bytes"] = one_line(err)
        return HostReading(
            hostname=self._hostname,
            cpu_percent=float(cpu),
            cpu_count=cpu_count,
            memory_used_bytes=mem_total - mem_available,
            memory_total_bytes=mem_total,
            load_average=load,
            disk_path=self._disk_path,
            disk_used_bytes=disk_used,
            disk_total_bytes=disk_total,
            unavailable=freeze(reasons),
        )


def _memory_and_cpus() -> tuple[int, int, int | None]:
    """(memory total, available, logical CPUs)."""
    if procfs.AVAILABLE:
        return (*procfs.memory(), procfs.cpu_count())
    import psutil

    mem = psutil.virtual_memory()
    return int(mem.total), int(mem.available), psutil.cpu_count()
