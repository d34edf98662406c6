"""What psutil can tell about a pid that NVML reported.

NVML and psutil do not agree by construction: a process can exit between the two reads, live in
another PID namespace (a container: NVML gives host pids) or belong to a user we may not inspect.
Each of those becomes a ``detail`` sentence instead of an exception.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import psutil

from vramtop import redact
from vramtop.model import ProcessReading, ProcInfo, freeze

GONE = "not visible here: it exited, or it runs in another PID namespace (a container)"
EXITED = "exited while being read"
DENIED = "no permission to read its details (run vramtop as its user or as root)"
PARENT_DEPTH = 4  # how far up the tree to look for a launcher's command line
FIRST_SAMPLE = "known from the next refresh (CPU use is measured between two refreshes)"
USAGE_FIELDS = ("cpu_percent", "rss_bytes", "started_at")

_CONTAINER_ID = re.compile(
    r"(?:docker|cri-containerd|crio|libpod)[-/]([0-9a-f]{12,64})|/([0-9a-f]{64})"
)


@dataclass(frozen=True, slots=True)
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

    def __init__(self) -> None:
        self._cache: dict[int, tuple[float, ProcInfo]] = {}
        self._users: dict[int, str | None] = {}
        # One psutil.Process per (pid, start): cpu_percent() measures since its previous call.
        self._watched: dict[int, tuple[float, psutil.Process]] = {}

    def describe(self, pid: int) -> ProcInfo:
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
        info = self._read(proc)
        if info.detail != EXITED:
            self._cache[pid] = (started, info)
        return info

    def with_ancestors(self, info: ProcInfo) -> ProcInfo:
        """The same process with its launchers' command lines, cached with it."""
        if info.ancestors or info.detail:
            return info
        try:
            proc = psutil.Process(info.pid)
            started = proc.create_time()
        except psutil.Error:
            return info
        full = replace(info, ancestors=_ancestors(proc))
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
        try:
            proc = psutil.Process(pid)
            started = proc.create_time()
        except psutil.NoSuchProcess:
            self._watched.pop(pid, None)
            return _no_usage(GONE)
        except psutil.AccessDenied:
            return _no_usage(DENIED)
        watched = self._watched.get(pid)
        first = watched is None or watched[0] != started
        if first:
            self._watched[pid] = (started, proc)
        else:
            proc = watched[1]
        reasons: list[tuple[str, str]] = []
        cpu = rss = None
        try:
            with proc.oneshot():
                cpu = proc.cpu_percent(None)
                rss = int(proc.memory_info().rss)
        except psutil.NoSuchProcess:
            self._watched.pop(pid, None)
            return _no_usage(EXITED)
        except psutil.AccessDenied:
            reasons += [("cpu_percent", DENIED), ("rss_bytes", DENIED)]
            cpu = rss = None
        if first and cpu is not None:
            cpu = None
            reasons.append(("cpu_percent", FIRST_SAMPLE))
        return ProcUsage(cpu, rss, started, tuple(reasons))

    def _read(self, proc: psutil.Process) -> ProcInfo:
        details: list[str] = []
        user = name = None
        argv: tuple[str, ...] = ()
        try:
            with proc.oneshot():
                name = proc.name()
                user = self._user(proc, details)
                argv = redact.argv(_safe(proc.cmdline, details) or ())
        except psutil.ZombieProcess:
            return ProcInfo(proc.pid, name=name, detail=EXITED)
        except psutil.NoSuchProcess:
            return ProcInfo(proc.pid, name=name, detail=EXITED)
        except psutil.AccessDenied:
            details.append(DENIED)
        if not argv and not details and _dead(proc):
            # A process killed a moment ago reads as an empty command line, not an error.
            return ProcInfo(proc.pid, name=name, detail=EXITED)
        return ProcInfo(
            pid=proc.pid,
            user=user,
            name=name,
            argv=argv,
            container=_container_of(proc.pid),
            detail=details[0] if details else None,
        )

    def _user(self, proc: psutil.Process, details: list[str]) -> str | None:
        """uid -> name through the passwd database once per uid, not once per process."""
        uid = _safe(lambda: proc.uids().real, details)
        if uid is None:
            return None
        if uid not in self._users:
            self._users[uid] = _safe(proc.username, details)
        return self._users[uid]


def _no_usage(reason: str) -> ProcUsage:
    return ProcUsage(reasons=tuple((f, reason) for f in USAGE_FIELDS))


def _safe(getter, details: list[str]):  # type: ignore[no-untyped-def]
    try:
        return getter()
    except psutil.AccessDenied:
        details.append(DENIED)
        return None
    except KeyError:  # username of a uid with no passwd entry (common in containers)
        return None


def _dead(proc: psutil.Process) -> bool:
    try:
        return proc.status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except psutil.Error:
        return True


def _ancestors(proc: psutil.Process) -> tuple[tuple[int, tuple[str, ...]], ...]:
    out: list[tuple[int, tuple[str, ...]]] = []
    try:
        parent = proc.parent()
        while parent is not None and parent.pid > 1 and len(out) < PARENT_DEPTH:
            out.append((parent.pid, redact.argv(parent.cmdline())))
            parent = parent.parent()
    except (psutil.Error, OSError):
        pass
    return tuple(out)


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
