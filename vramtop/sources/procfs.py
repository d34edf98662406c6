"""This machine's CPU times, memory, disk and processes from Linux's /proc, read as psutil (7.2,
as pinned) reads them, field for field.

psutil stays the portable reader, and what a machine without /proc uses. On Linux the local
sources read the few files they need themselves: importing psutil cost ~25 ms and 4 MiB of
every start (a third of what --once may take), and its per-process objects read each file
twice, about four times the CPU of these reads for 64 processes.
"""

from __future__ import annotations

import os
import sys
from functools import cache
from typing import NamedTuple

AVAILABLE = os.path.exists("/proc/self/stat")
_ENCODING = sys.getfilesystemencoding()
_ERRORS = sys.getfilesystemencodeerrors()  # surrogateescape: any byte survives, as in psutil


class CpuTimes(NamedTuple):
    """The first line of /proc/stat in seconds: psutil.cpu_times()'s fields."""

    user: float
    nice: float
    system: float
    idle: float
    iowait: float = 0.0
    irq: float = 0.0
    softirq: float = 0.0
    steal: float = 0.0
    guest: float = 0.0
    guest_nice: float = 0.0


class Stat(NamedTuple):
    """What /proc/<pid>/stat says: the kernel's 15-character name, state letter, parent pid,
    CPU seconds (user + system), start time (epoch seconds, psutil's create_time())."""

    comm: str
    state: str
    ppid: int
    cpu_seconds: float
    started_at: float


@cache
def clock() -> tuple[float, int, int]:
    """(boot time, clock ticks per second, page size). Boot time is /proc/stat's btime, as
    psutil.boot_time() reads it, so start times equal psutil's create_time()."""
    with open("/proc/stat", "rb") as f:
        for line in f:
            if line.startswith(b"btime"):
                boot = float(line.split()[1])
                break
        else:
            raise OSError("/proc/stat has no btime line")
    return boot, os.sysconf("SC_CLK_TCK"), os.sysconf("SC_PAGE_SIZE")


def cpu_times() -> CpuTimes:
    with open("/proc/stat", "rb") as f:
        values = f.readline().split()[1:]
    ticks = clock()[1]
    return CpuTimes(*(int(v) / ticks for v in values[: len(CpuTimes._fields)]))


def memory() -> tuple[int, int]:
    """(total, available) bytes: MemTotal and MemAvailable (kernels since 3.14)."""
    found: dict[bytes, int] = {}
    with open("/proc/meminfo", "rb") as f:
        for line in f:
            key, _, rest = line.partition(b":")
            if key in (b"MemTotal", b"MemAvailable", b"MemFree", b"Buffers", b"Cached"):
                found[key] = int(rest.split()[0]) * 1024
    # Older kernels: free + buffers + page cache, the estimate before MemAvailable existed.
    available = found.get(b"MemAvailable")
    if available is None:
        available = found.get(b"MemFree", 0) + found.get(b"Buffers", 0) + found.get(b"Cached", 0)
    return found[b"MemTotal"], available


def disk(path: str) -> tuple[int, int]:
    """(used, total) bytes as psutil.disk_usage counts them: used is what is not free to root."""
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    return total - st.f_bfree * st.f_frsize, total


def cpu_count() -> int | None:
    """Logical CPUs online, psutil.cpu_count()'s answer."""
    try:
        n = os.sysconf("SC_NPROCESSORS_ONLN")
    except (OSError, ValueError):
        n = 0
    return n if n > 0 else os.cpu_count()


# -- processes: each raises FileNotFoundError/ProcessLookupError (gone) or PermissionError ------


def stat(pid: int) -> Stat:
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    # The name sits between the first "(" and the last ")" and may hold either.
    rpar = data.rfind(b")")
    comm = data[data.find(b"(") + 1 : rpar].decode(_ENCODING, _ERRORS)
    fields = data[rpar + 2 :].split()
    try:
        utime, stime, start = int(fields[11]), int(fields[12]), int(fields[19])
        state, ppid = fields[0].decode("ascii", "replace"), int(fields[1])
    except (IndexError, ValueError):
        raise ProcessLookupError(pid) from None  # a torn read of a process going away
    boot, ticks, _ = clock()
    return Stat(comm, state, ppid, (utime + stime) / ticks, boot + start / ticks)


def cmdline(pid: int) -> list[str]:
    """psutil's Process.cmdline(): NUL-separated, or space-separated where a process rewrote
    its command line (setproctitle)."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        data = f.read().decode(_ENCODING, _ERRORS)
    if not data:
        return []
    sep = "\x00" if data.endswith("\x00") else " "
    if data.endswith(sep):
        data = data[:-1]
    argv = data.split(sep)
    if sep == "\x00" and len(argv) == 1 and " " in data:
        argv = data.split(" ")
    return argv


def name(st: Stat, argv: list[str]) -> str:
    """psutil's Process.name(): the kernel cuts names at 15 characters; where the command
    line's first word starts with the cut name, that word is the name."""
    if len(st.comm) >= 15 and argv:
        extended = os.path.basename(argv[0])
        if extended.startswith(st.comm):
            return extended
    return st.comm


def real_uid(pid: int) -> int:
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            if line.startswith(b"Uid:"):
                return int(line.split()[1])
    raise ProcessLookupError(pid)


def username(uid: int) -> str:
    """psutil's Process.username(): the passwd name, or the uid as text where none exists."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def statm_rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm", "rb") as f:
        return int(f.read().split()[1]) * clock()[2]


def parent(pid: int, st: Stat) -> tuple[int, Stat] | None:
    """The parent (pid, stat) of ``pid`` whose stat is ``st``, as psutil's Process.parent():
    none for pid 1, and none where the parent pid was reused by a process younger than the
    child."""
    if pid <= 1 or st.ppid <= 0:
        return None
    try:
        up = stat(st.ppid)
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (st.ppid, up) if up.started_at <= st.started_at else None
