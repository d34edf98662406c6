"""Signals through a real terminal (tmux): the real ``vramtop`` over the fake NVML reports a real
child; T and y on its row terminate it. With --readonly the same keys do nothing, the help
does not list them and the header says read-only."""

from __future__ import annotations

import signal
import sys
import time

from fakenvml import fake_env
from test_tui_e2e import base_env, terminal  # noqa: F401 (fixture)

from vramtop.demo.scenario import Gpu, Process, Scenario

GIB = 2**30


def start(fake_lib, tmp_path, terminal, child, *flags: str):  # noqa: F811
    scenario = Scenario(gpus=(Gpu(uuid="GPU-sig-e2e", processes=(Process(child.pid, 8 * GIB),)),))
    path = tmp_path / "scenario.toml"
    scenario.write(path)
    t = terminal(fake_env(fake_lib, path, base_env(tmp_path)))
    t.start([sys.executable, "-m", "vramtop", "--interval", "1", *flags])
    t.wait_for(lambda s: "sig-e2e" in s and "GPUs (1)" in s, "the overview")
    t.keys("Enter")  # the GPU table has the focus
    row = ("GPU 0 processes (1)", str(child.pid), "sig-e2e")
    t.wait_for(lambda s: all(n in s for n in row), "the GPU drill-down with the child's row")
    return t


def wait_exit(child, what: str) -> None:
    deadline = time.monotonic() + 30
    while child.poll() is None:
        assert time.monotonic() < deadline, f"the child never exited: {what}"
        time.sleep(0.05)


def test_terminate_a_process_under_tmux(fake_lib, spawn, tmp_path, terminal):  # noqa: F811
    child = spawn("serve.py", "--served-model-name", "sig-e2e")
    t = start(fake_lib, tmp_path, terminal, child)
    t.keys("T")
    ask = (f"Terminate pid {child.pid} with SIGTERM?", "Cancel", "Send SIGTERM", "sig-e2e")
    t.wait_for(lambda s: all(n in s for n in ask), "the confirmation")
    assert child.poll() is None  # asking sends nothing
    t.keys("y")
    wait_exit(child, "after y")
    assert child.returncode == -signal.SIGTERM
    t.wait_for(lambda s: f"SIGTERM pid {child.pid}: sent" in s, "the outcome in the status line")
    t.keys("?")  # the help lists the keys (and does not with --readonly, below)
    t.wait_for(lambda s: "Terminate the process (SIGTERM)" in s, "the keys in the help")
    t.keys("Escape")
    t.wait_for(lambda s: "vramtop keys" not in s, "help closed")
    assert "read-only" not in t.screen()
    t.keys("Escape")
    t.wait_for(lambda s: "GPU 0 processes" not in s, "back")
    t.keys("q")
    t.wait_for(lambda s: "VRAMTOP-EXITED rc=0" in s, "a clean exit")


def test_readonly_under_tmux(fake_lib, spawn, tmp_path, terminal):  # noqa: F811
    child = spawn("serve.py", "--served-model-name", "sig-e2e")
    t = start(fake_lib, tmp_path, terminal, child, "--readonly")
    assert "read-only" in t.screen()
    t.keys("T", "y", "K", "y", "I", "y")
    t.keys("?")
    text = t.wait_for(lambda s: "vramtop keys" in s, "help")
    assert "Terminate" not in text and "SIGKILL" not in text
    assert child.poll() is None  # the keys did nothing
    t.keys("Escape")
    t.wait_for(lambda s: "vramtop keys" not in s, "help closed")
    t.keys("Escape")
    t.wait_for(lambda s: "GPU 0 processes" not in s, "back")
    t.keys("q")
    t.wait_for(lambda s: "VRAMTOP-EXITED rc=0" in s, "a clean exit")
    assert child.poll() is None
