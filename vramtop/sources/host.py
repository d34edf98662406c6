"""The host itself through psutil: CPU, memory, load and the disk of ``/``."""

from __future__ import annotations

import os
import socket
import time

import psutil

from vramtop.clean import one_line
from vramtop.model import HostReading, freeze

# psutil measures CPU % between two calls; a window shorter than this is mostly noise.
MIN_CPU_WINDOW = 0.05


class HostSource:
    name = "host"

    def __init__(self, disk_path: str = "/", hostname: str | None = None) -> None:
        self._disk_path = disk_path
        self._hostname = hostname or socket.gethostname()
        # Start the CPU window now so the first poll (often a --once) has a real figure.
        psutil.cpu_percent(interval=None)
        self._primed_at = time.monotonic()

    @property
    def hostname(self) -> str:
        return self._hostname

    def poll(self) -> HostReading:
        reasons: dict[str, str] = {}
        wait = MIN_CPU_WINDOW - (time.monotonic() - self._primed_at)
        if wait > 0:
            time.sleep(wait)
        cpu = psutil.cpu_percent(interval=None)
        self._primed_at = -1e18  # later polls measure since the previous one
        mem = psutil.virtual_memory()
        try:
            load: tuple[float, float, float] | None = os.getloadavg()
        except OSError as err:
            load, reasons["load_average"] = None, one_line(err)
        try:
            disk = psutil.disk_usage(self._disk_path)
            disk_used, disk_total = int(disk.used), int(disk.total)
        except OSError as err:
            disk_used = disk_total = None
            reasons["disk_used_bytes"] = reasons["disk_total_bytes"] = one_line(err)
        return HostReading(
            hostname=self._hostname,
            cpu_percent=float(cpu),
            cpu_count=psutil.cpu_count(),
            memory_used_bytes=int(mem.total - mem.available),
            memory_total_bytes=int(mem.total),
            load_average=load,
            disk_path=self._disk_path,
            disk_used_bytes=disk_used,
            disk_total_bytes=disk_total,
            unavailable=freeze(reasons),
        )
