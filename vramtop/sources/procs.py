"""What the host can tell about a pid that NVML reported: /proc on Linux (procfs), psutil
elsewhere.

NVML and the host do not agree by construction: a process can exit between the two reads, live
in another PID namespace (a container: NVML gives host pids) or belong to a user we may not
inspect. Each of those becomes a ``detail`` sentence instead of an exception.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from typing import Any

from vramtop import redact
from vramtop.model import ProcessReading, ProcInfo, freeze
from vramtop.records import record
from vramtop.sources import procfs

GONE = "not visible here: it exited, or it runs in another PID namespace (a container)"
EXITED = "exited while being read"
DENIED = "no permission to read its details (run vramtop as its user or as root)"
PARENT_DEPTH = 4  # how far up the tree to look for a launcher's command line
FIRST_SAMPLE = "known from the next refresh (CPU use is measured between two refreshes)"
USAGE_FIELDS = ("cpu_percent", "rss_bytes", "started_at")
_GONE_ERRORS = (FileNotFoundError, ProcessLookupError)

_CONTAINER_ID = re.compile(
    r"(?:docker|cri-containerd|crio|libpod)[-/]([0-9a-f]{12,64})|/([0-9a-f]{64})"
)


@record
class ProcUsage:
    """A process's host-side use: CPU % of one core since the last look, resident memory,
    start time (epoch seconds). None with a reason where unknown."""

    cpu_percent: float | None = None
    rss_bytes: int | None = None
    started_at: float | None = None
    reasons: tuple[tuple[str, str], ...] = ()

    def apply(self, p: ProcessReading) -> ProcessReading:
        """The reading with these fields (and their reasons) filled in."""
        unavailable = {**p.unavailable, **dict(self.reasons)} if self.reasons else p.unavailable
        return replace(
            p,
            cpu_percent=self.cpu_percent,
            rss_bytes=self.rss_bytes,
            started_at=self.started_at,
            unavailable=freeze(dict(unavailable)),
        )


class ProcessInspector:
    """Looks pids up, caching what cannot change for one process lifetime."""

    def __init__(self, proc_stat: bool | None = None) -> None:
        """``proc_stat`` False: everything through psutil even where /proc exists."""
        self._cache: dict[int, tuple[float, ProcInfo]] = {}
        self._users: dict[int, str | None] = {}
        # pid -> (start time, CPU seconds, monotonic time) at the last look, for CPU %.
        self._watched: dict[int, tuple[float, float, float]] = {}
        self._proc = proc_stat if proc_stat is not None else procfs.AVAILABLE

    def describe(self, pid: int) -> ProcInfo:
        if not self._proc:
            return self._describe_psutil(pid)
        try:
            st = procfs.stat(pid)
        except _GONE_ERRORS:
            self._cache.pop(pid, None)
            return ProcInfo(pid, detail=GONE)
        except PermissionError:
            return ProcInfo(pid, detail=DENIED)
        cached = self._cache.get(pid)
        if cached and cached[0] == st.started_at:
            return cached[1]
        info = self._read(pid, st)
        # An empty command line without a reason is a process caught inside exec() (named,
        # its new arguments not yet set up): read again next time, not kept for its lifetime.
        if info.detail != EXITED and (info.argv or info.detail):
            self._cache[pid] = (st.started_at, info)
        return info

    def with_ancestors(self, info: ProcInfo) -> ProcInfo:
        """The same process with its launchers' command lines, cached with it."""
        if info.ancestors or info.detail:
            return info
        found = _ancestors(info.pid) if self._proc else _ancestors_psutil(info.pid)
        if found is None:
            return info
        started, ancestors = found
        full = replace(info, ancestors=ancestors)
        cached = self._cache.get(info.pid)
        if cached and cached[0] == started:
            self._cache[info.pid] = (started, full)
        return full

    def forget_except(self, live: set[int]) -> None:
        for pid in [p for p in self._cache if p not in live]:
            del self._cache[pid]
        for pid in [p for p in self._watched if p not in live]:
            del self._watched[pid]

    def usage(self, pid: int) -> ProcUsage:
        """CPU %, RSS and start time; the first look at a process has no CPU % yet."""
        sample = _stat(pid) if self._proc else _psutil_sample(pid)
        if isinstance(sample, str):
            self._watched.pop(pid, None)
            return _no_usage(sample)
        started, cpu_seconds, rss = sample
        now = time.monotonic()
        prev = self._watched.get(pid)
        self._watched[pid] = (started, cpu_seconds, now)
        if prev is None or prev[0] != started or now <= prev[2]:
            return ProcUsage(None, rss, started, (("cpu_percent", FIRST_SAMPLE),))
        cpu = max(0.0, (cpu_seconds - prev[1]) / (now - prev[2]) * 100)
        return ProcUsage(cpu, rss, started)

    def _read(self, pid: int, st: procfs.Stat) -> ProcInfo:
        details: list[str] = []
        user = None
        argv: list[str] = []
        try:
            argv = procfs.cmdline(pid)
        except PermissionError:
            details.append(DENIED)
        except _GONE_ERRORS:
            return ProcInfo(pid, name=st.comm, detail=EXITED)
        name = procfs.name(st, argv)
        try:
            uid = procfs.real_uid(pid)
        except PermissionError:
            details.append(DENIED)
        except _GONE_ERRORS:
            return ProcInfo(pid, name=name, detail=EXITED)
        else:
            if uid not in self._users:  # the passwd database once per uid
                self._users[uid] = procfs.username(uid)
            user = self._users[uid]
        if not argv and not details and _dead_proc(pid):
            # A process killed a moment ago reads as an empty command line, not an error.
            return ProcInfo(pid, name=name, detail=EXITED)
        return ProcInfo(
            pid=pid,
            user=user,
            name=name,
            argv=redact.argv(argv),
            container=_container_of(pid),
            detail=details[0] if details else None,
        )

    # -- psutil, where there is no /proc ---------------------------------------------------

    def _describe_psutil(self, pid: int) -> ProcInfo:
        import psutil

        try:
            proc = psutil.Process(pid)
            started = proc.create_time()
        except psutil.NoSuchProcess:
            self._cache.pop(pid, None)
            return ProcInfo(pid, detail=GONE)
        except psutil.AccessDenied:
            return ProcInfo(pid, detail=DENIED)
        cached = self._cache.get(pid)
        if cached and cached[0] == started:
            return cached[1]
        info = self._read_psutil(proc)
        if info.detail != EXITED:
            self._cache[pid] = (started, info)
        return info

    def _read_psutil(self, proc: Any) -> ProcInfo:
        import psutil

        details: list[str] = []
        user = name = None
        argv: tuple[str, ...] = ()
        try:
            with proc.oneshot():
                name = proc.name()
                user = self._user_psutil(proc, details)
                argv = redact.argv(_safe(proc.cmdline, details) or ())
        except psutil.ZombieProcess:
            return ProcInfo(proc.pid, name=name, detail=EXITED)
        except psutil.NoSuchProcess:
            return ProcInfo(proc.pid, name=name, detail=EXITED)
        except psutil.AccessDenied:
            details.append(DENIED)
        if not argv and not details and _dead_psutil(proc):
            return ProcInfo(proc.pid, name=name, detail=EXITED)
        return ProcInfo(
            pid=proc.pid,
            user=user,
            name=name,
            argv=argv,
            container=_container_of(proc.pid),
            detail=details[0] if details else None,
        )

    def _user_psutil(self, proc: Any, details: list[str]) -> str | None:
        uid = _safe(lambda: proc.uids().real, details)
        if uid is None:
            return None
        if uid not in self._users:
            self._users[uid] = _safe(proc.username, details)
        return self._users[uid]


def _stat(pid: int) -> tuple[float, float, int] | str:
    """(start time, CPU seconds, RSS bytes) from /proc/<pid>/stat and statm, or why not. The
    start time is psutil's create_time(), the RSS its memory_info().rss (VmRSS)."""
    try:
        st = procfs.stat(pid)
        rss = procfs.statm_rss(pid)
    except PermissionError:
        return DENIED
    except (OSError, ValueError, IndexError):
        return GONE
    return st.started_at, st.cpu_seconds, rss


def _psutil_sample(pid: int) -> tuple[float, float, int] | str:
    import psutil

    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            times = proc.cpu_times()
            return proc.create_time(), times.user + times.system, int(proc.memory_info().rss)
    except psutil.NoSuchProcess:
        return GONE
    except psutil.AccessDenied:
        return DENIED


def _no_usage(reason: str) -> ProcUsage:
    return ProcUsage(reasons=tuple((f, reason) for f in USAGE_FIELDS))


def _safe(getter, details: list[str]):  # type: ignore[no-untyped-def]
    import psutil

    try:
        return getter()
    except psutil.AccessDenied:
        details.append(DENIED)
        return None
    except KeyError:  # username of a uid with no passwd entry (common in containers)
        return None


def _dead_proc(pid: int) -> bool:
    try:
        return procfs.stat(pid).state in ("Z", "X", "x")
    except OSError:
        return True


def _dead_psutil(proc: Any) -> bool:
    import psutil

    try:
        return proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.Error:
        return True


Ancestors = tuple[tuple[int, tuple[str, ...]], ...]


def _ancestors(pid: int) -> tuple[float, Ancestors] | None:
    """(the process's start time, its launchers' (pid, argv), nearest first); None when it
    is gone. Each process's /proc stat is read once."""
    try:
        st = procfs.stat(pid)
    except OSError:
        return None
    out: list[tuple[int, tuple[str, ...]]] = []
    try:
        up = procfs.parent(pid, st)
        while up is not None and up[0] > 1 and len(out) < PARENT_DEPTH:
            out.append((up[0], redact.argv(procfs.cmdline(up[0]))))
            up = procfs.parent(*up)
    except OSError:
        pass
    return st.started_at, tuple(out)


def _ancestors_psutil(pid: int) -> tuple[float, Ancestors] | None:
    import psutil

    out: list[tuple[int, tuple[str, ...]]] = []
    try:
        proc = psutil.Process(pid)
        started = proc.create_time()
    except Exception:
        return None
    try:
        parent = proc.parent()
        while parent is not None and parent.pid > 1 and len(out) < PARENT_DEPTH:
            out.append((parent.pid, redact.argv(parent.cmdline())))
            parent = parent.parent()
    except (psutil.Error, OSError):
        pass
    return started, tuple(out)


def _container_of(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    m = _CONTAINER_ID.search(text)
    if not m:
        return None
    return (m.group(1) or m.group(2))[:12]
