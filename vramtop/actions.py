"""Signalling a GPU process: what is at stake, whether it may be signalled from here, and the
signal itself, refused rather than sent to the wrong process.

A process is named by its pid *and* the start time the user saw (ProcessReading.started_at): a
pid that now belongs to another process is refused. Where Linux offers a pidfd, the process is
pinned before its start time is checked, so the check and the signal reach the same process.
Every outcome is one sentence for the status line; nothing here raises.
"""

from __future__ import annotations

import os
import signal

from vramtop import clean
from vramtop.model import Frame, GpuReading, ProcessReading, iso_utc
from vramtop.records import record
from vramtop.units import gib

# What the user asks for -> the signal. Interrupt is what Ctrl-C in the server's terminal sends.
SIGNALS: dict[str, signal.Signals] = {
    "terminate": signal.SIGTERM,
    "kill": signal.SIGKILL,
    "interrupt": signal.SIGINT,
}
# /proc/stat's boot time, which psutil adds to a process's start ticks, can move by a second
# between two reads; a pid recycled within a second of the original's start cannot happen
# (the original lived at least until it was seen).
SAME_START_S = 1.0
REMOTE = "Remote process, cannot be signalled from here"


@record
class Outcome:
    """What became of one request: ``sent`` True only when the kernel took the signal."""

    sent: bool
    message: str  # one sentence
    pid: int
    signal: str  # SIGTERM, SIGKILL, SIGINT


@record
class Peer:
    """Another process of the same model: pid, GPUs and VRAM over them."""

    pid: int
    gpus: tuple[int, ...]
    vram_bytes: int | None


@record
class Stake:
    """What a signal would stop, as the confirmation shows it. Text is as read (the screen
    makes it literal). A pid on several GPUs is one process: VRAM is the sum."""

    pid: int
    started_at: float | None
    user: str | None
    command: str | None
    model: str | None
    vram_bytes: int | None
    gpus: tuple[int, ...]
    peers: tuple[Peer, ...] = ()

    @property
    def stops_model(self) -> str | None:
        """The sentence about the model's other processes, or None when it has none."""
        if not self.peers or not self.model:
            return None
        return (
            f"{clean.literal(self.model)} also runs as {len(self.peers)} other "
            f"process{'es' if len(self.peers) > 1 else ''}: killing one tensor-parallel rank "
            "stops the whole model."
        )


def find(frame: Frame, pid: int, gpu_index: int, host: str | None = None) -> ProcessReading | None:
    """The process row (``gpu_index``, ``pid``) of ``frame`` on ``host`` (None: this machine)."""
    for g in frame.gpus:
        if g.index == gpu_index and g.host == host:
            return next((p for p in g.processes if p.pid == pid), None)
    return None


def stake(frame: Frame, proc: ProcessReading, host: str | None = None) -> Stake:
    """The process across every GPU it holds memory on, and the other processes of its model."""
    gpus = [g for g in frame.gpus if g.host == host]
    mine = [p for g in gpus for p in g.processes if p.pid == proc.pid]
    peers: dict[int, list[ProcessReading]] = {}
    if proc.model:
        for g in gpus:
            for p in g.processes:
                if p.model == proc.model and p.pid != proc.pid:
                    peers.setdefault(p.pid, []).append(p)
    return Stake(
        pid=proc.pid,
        started_at=proc.started_at,
        user=proc.user,
        command=proc.command or proc.name,
        model=proc.model,
        vram_bytes=_total(mine),
        gpus=tuple(sorted({p.gpu_index for p in mine})),
        peers=tuple(
            Peer(pid, tuple(sorted({p.gpu_index for p in ps})), _total(ps))
            for pid, ps in sorted(peers.items())
        ),
    )


def _total(procs: list[ProcessReading]) -> int | None:
    known = [p.used_memory_bytes for p in procs if p.used_memory_bytes is not None]
    return sum(known) if known else None


def refusal(frame: Frame, gpu: GpuReading | None, proc: ProcessReading, replay: bool) -> str | None:
    """Why ``proc`` cannot be signalled from here, as one sentence; None when it can be tried."""
    where = f"pid {proc.pid}"
    if replay:
        return f"{REMOTE}: {where} is in a recording being replayed."
    if gpu is not None and gpu.host is not None:
        return f"{REMOTE}: {where} runs on {clean.literal(gpu.host)}."
    if frame.demo:
        return f"Simulated process: {where} belongs to the demo, there is nothing to signal."
    if proc.pid <= 0:  # os.kill(0, ...) would signal vramtop's own process group
        return f"NVML reported no usable pid ({proc.pid}): nothing to signal."
    if proc.pid == os.getpid():
        return f"{where} is vramtop itself: press q to quit."
    if proc.started_at is None:
        why = proc.unavailable.get("started_at") or proc.detail or "not read"
        return (
            f"{where} cannot be told from a recycled pid: its start time is unknown "
            f"({clean.literal(why)}); not signalled."
        )
    return None


def send(pid: int, started_at: float, name: str) -> Outcome:
    """Sends the signal ``name`` (a SIGNALS key) to ``pid`` if it still started at
    ``started_at`` (epoch s, as psutil's create_time())."""
    import psutil  # here, not at import: the live view starts without it (~0.9 MiB)

    sig = SIGNALS[name]
    label = sig.name
    fd = _pin(pid)
    if fd == -1:
        return Outcome(False, _gone(pid, label), pid, label)
    try:
        try:
            now = psutil.Process(pid).create_time()
        except psutil.NoSuchProcess:
            return Outcome(False, _gone(pid, label), pid, label)
        except psutil.AccessDenied:
            return Outcome(False, _denied(pid, label, "its start time cannot be read"), pid, label)
        if abs(now - started_at) > SAME_START_S:
            return Outcome(
                False,
                f"Pid {pid} now belongs to another process (started {iso_utc(now)}, not "
                f"{iso_utc(started_at)}): {label} not sent.",
                pid,
                label,
            )
        if fd is not None:
            signal.pidfd_send_signal(fd, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        return Outcome(False, _gone(pid, label), pid, label)
    except PermissionError:
        return Outcome(False, _denied(pid, label, _owner(pid)), pid, label)
    except OSError as err:
        return Outcome(False, f"{label} to pid {pid} failed: {clean.one_line(err)}.", pid, label)
    finally:
        if fd is not None and fd >= 0:
            os.close(fd)
    return Outcome(
        True,
        f"{label} sent to pid {pid}; its row goes when NVML stops reporting it.",
        pid,
        label,
    )


def _pin(pid: int) -> int | None:
    """A pidfd on ``pid``: None where there is none to be had (not Linux, old kernel), -1 when
    no such process exists."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None or not hasattr(signal, "pidfd_send_signal"):
        return None
    try:
        return opener(pid)
    except ProcessLookupError:
        return -1
    except OSError:  # ENOSYS, EPERM under a seccomp filter, EINVAL: fall back to kill()
        return None


def _gone(pid: int, label: str) -> str:
    return f"Process {pid} is gone: it exited before {label} was sent."


def _denied(pid: int, label: str, why: str) -> str:
    return f"Permission denied: {label} to pid {pid} was refused ({why})."


def _owner(pid: int) -> str:
    import psutil

    try:
        owner = psutil.Process(pid).username()
    except (psutil.Error, KeyError):
        owner = None
    try:
        me = psutil.Process().username()
    except (psutil.Error, KeyError):
        me = str(os.getuid())
    if owner is None:
        return f"vramtop runs as {clean.literal(me)}"
    return f"it belongs to {clean.literal(owner)}, vramtop runs as {clean.literal(me)}"


def describe_vram(s: Stake) -> str:
    """``70.0 GiB on GPU 0,1``: the VRAM line of the confirmation."""
    on = ",".join(str(i) for i in s.gpus) or "?"
    return f"{gib(s.vram_bytes)} on GPU {on}"
