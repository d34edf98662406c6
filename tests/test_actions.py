"""Signalling real child processes: the signal really arrives, a recycled pid is refused, a gone
process and a refused permission are each one sentence; what is at stake is read from a Frame."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest

from vramtop import actions
from vramtop.model import Frame, GpuReading, HostReading, ProcessReading, freeze

GIB = 2**30


def started(child: subprocess.Popen) -> float:
    return psutil.Process(child.pid).create_time()


@pytest.mark.parametrize(
    ("name", "code"),
    [("terminate", -signal.SIGTERM), ("kill", -signal.SIGKILL), ("interrupt", -signal.SIGINT)],
)
def test_signal_reaches_the_child_and_it_exits(spawn, name, code):
    child = spawn("--model", "victim")
    out = actions.send(child.pid, started(child), name)
    assert out.sent, out.message
    label = actions.SIGNALS[name].name
    assert out.message == (
        f"{label} sent to pid {child.pid}; its row goes when NVML stops reporting it."
    )
    # Python dies of KeyboardInterrupt by re-raising SIGINT: each child dies of its signal.
    assert child.wait(timeout=10) == code


def test_recycled_pid_is_refused_and_not_signalled(spawn):
    child = spawn("--model", "new-owner")
    seen = started(child) - 3600.0  # what the user saw: an older process with the same pid
    out = actions.send(child.pid, seen, "kill")
    assert not out.sent
    assert out.message == (
        f"Pid {child.pid} now belongs to another process (started "
        f"{actions.iso_utc(started(child))}, not {actions.iso_utc(seen)}): SIGKILL not sent."
    )
    assert child.poll() is None  # still alive
    assert psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE


def test_gone_process_is_one_sentence(spawn):
    child = spawn("--model", "short-lived")
    when = started(child)
    child.kill()
    child.wait()  # reaped: the pid no longer exists
    out = actions.send(child.pid, when, "terminate")
    assert not out.sent
    assert out.message == f"Process {child.pid} is gone: it exited before SIGTERM was sent."


def test_permission_denied_is_one_sentence(spawn):
    """A signal from an unprivileged process to root's child: the kernel refuses it. The tests
    may run as root, so the sender is a forked copy of this process that gave up root."""
    child = spawn("--model", "roots")
    owner = psutil.Process(child.pid).username()
    when = started(child)
    read, write = os.pipe()
    sender = os.fork()
    if sender == 0:  # the child: no pytest from here on, only os._exit
        code = 1
        try:
            os.close(read)
            if os.getuid() == 0:
                os.setgroups([])
                os.setresgid(65534, 65534, 65534)
                os.setresuid(65534, 65534, 65534)
            out = actions.send(child.pid, when, "kill")
            os.write(write, f"{out.sent}|{out.message}".encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        answer = f.read().decode()
    _, status = os.waitpid(sender, 0)
    assert os.waitstatus_to_exitcode(status) == 0, answer
    me = "nobody" if os.getuid() == 0 else psutil.Process().username()
    assert answer == (
        f"False|Permission denied: SIGKILL to pid {child.pid} was refused (it belongs to "
        f"{owner}, vramtop runs as {me})."
    )
    assert child.poll() is None


def test_pid_zero_or_own_pid_or_unknown_start_is_refused():
    frame = Frame(time=0.0, host=HostReading("here"))
    zero = ProcessReading(0, 0, GIB, started_at=1.0)
    assert actions.refusal(frame, None, zero, False) == (
        "NVML reported no usable pid (0): nothing to signal."
    )
    me = ProcessReading(os.getpid(), 0, GIB, started_at=1.0)
    assert actions.refusal(frame, None, me, False) == (
        f"pid {os.getpid()} is vramtop itself: press q to quit."
    )
    hidden = ProcessReading(
        4242, 0, GIB, unavailable=freeze({"started_at": "process gone"}), detail="x"
    )
    assert actions.refusal(frame, None, hidden, False) == (
        "pid 4242 cannot be told from a recycled pid: its start time is unknown "
        "(process gone); not signalled."
    )


def test_remote_replay_and_demo_are_refused():
    proc = ProcessReading(4101, 0, GIB, started_at=1.0)
    frame = Frame(time=0.0, host=HostReading("laptop"))
    remote = GpuReading(0, "GPU-r", "H100", processes=(proc,), host="gpu-07[bold]")
    assert actions.refusal(frame, remote, proc, False) == (
        "Remote process, cannot be signalled from here: pid 4101 runs on gpu-07[bold]."
    )
    local = GpuReading(0, "GPU-l", "H100", processes=(proc,))
    assert actions.refusal(frame, local, proc, True) == (
        "Remote process, cannot be signalled from here: pid 4101 is in a recording being replayed."
    )
    demo = Frame(time=0.0, host=HostReading("demo"), demo=True)
    assert actions.refusal(demo, local, proc, False) == (
        "Simulated process: pid 4101 belongs to the demo, there is nothing to signal."
    )
    assert actions.refusal(frame, local, proc, False) is None


def test_stake_names_the_model_and_its_other_ranks():
    def proc(pid: int, gpu: int, gib: int | None, model: str | None) -> ProcessReading:
        used = None if gib is None else gib * GIB
        return ProcessReading(
            pid, gpu, used, user="svc", command=f"serve --tp {pid}", model=model, started_at=5.0
        )

    rank0 = proc(100, 0, 30, "llama-70b")
    gpus = (
        GpuReading(0, "GPU-0", "H100", processes=(rank0, proc(300, 0, 2, "other"))),
        GpuReading(1, "GPU-1", "H100", processes=(proc(100, 1, 10, "llama-70b"),)),
        GpuReading(2, "GPU-2", "H100", processes=(proc(101, 2, 30, "llama-70b"),)),
        GpuReading(3, "GPU-3", "H100", processes=(proc(102, 3, None, "llama-70b"),)),
        GpuReading(0, "GPU-x", "H100", processes=(proc(103, 0, 9, "llama-70b"),), host="far"),
    )
    frame = Frame(time=0.0, host=HostReading("here"), gpus=gpus)
    assert actions.find(frame, 100, 1) == gpus[1].processes[0]
    assert actions.find(frame, 103, 0) is None  # that one is on another host
    s = actions.stake(frame, rank0)
    assert (s.pid, s.user, s.command, s.model) == (100, "svc", "serve --tp 100", "llama-70b")
    assert (s.vram_bytes, s.gpus) == (40 * GIB, (0, 1))
    assert s.peers == (actions.Peer(101, (2,), 30 * GIB), actions.Peer(102, (3,), None))
    assert s.stops_model == (
        "llama-70b also runs as 2 other processes: killing one tensor-parallel rank stops the "
        "whole model."
    )
    assert actions.describe_vram(s) == "40.0 GiB on GPU 0,1"
    alone = actions.stake(frame, gpus[0].processes[1])
    assert alone.peers == () and alone.stops_model is None


def test_a_child_that_ignores_sigterm_survives_it_and_not_sigkill():
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(120)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
        when = started(child)
        assert actions.send(child.pid, when, "terminate").sent
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=0.5)  # the signal arrived and was ignored: still there
        assert actions.send(child.pid, when, "kill").sent
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        child.kill()
        child.wait()
