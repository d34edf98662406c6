"""Process-level faults: output that cannot be written, signals at any moment of start-up and
out-of-range times. Each runs the real CLI as a child process; each must end with one sentence
(or nothing) on stderr, the documented exit status, and never a traceback."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

VRAMTOP = [sys.executable, "-m", "vramtop"]
SCRIPT = str(Path(sys.executable).with_name("vramtop"))  # the installed console script


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRAMTOP_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    return env


def in_shell(tmp_path: Path, redirect: str, *args: str) -> subprocess.CompletedProcess:
    """``vramtop ARGS`` with stdout redirected by the shell (``>&-``, ``>/dev/full`` ...)."""
    return subprocess.run(
        ["sh", "-c", f'exec "$@" {redirect}', "sh", *VRAMTOP, *args],
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
    )


def assert_one_sentence(err: str, start: str) -> None:
    assert err.startswith(start), err
    assert err.count("\n") == 1 and "Traceback" not in err and "Exception" not in err, err


# ---- output that cannot be written ----

ONE_SHOTS = [
    ["--demo", "--once"],
    ["--demo", "--once", "--json"],
    ["--demo", "--once", "--format", "markdown"],
    ["--version"],
    ["--help"],
]


@pytest.mark.parametrize(
    ("redirect", "reason"),
    [
        (">/dev/full", "No space left on device"),
        (">&-", "standard output is closed"),
        ("1</dev/null", "Bad file descriptor"),
    ],
)
@pytest.mark.parametrize("args", ONE_SHOTS, ids=" ".join)
def test_a_stdout_that_cannot_take_the_frame_is_one_sentence(tmp_path, redirect, reason, args):
    out = in_shell(tmp_path, redirect, *args)
    assert out.returncode == 2, out.stderr
    assert_one_sentence(out.stderr, f"vramtop: cannot write the output: {reason}")


@pytest.mark.parametrize("args", ONE_SHOTS, ids=" ".join)
def test_a_reader_that_went_away_is_quiet(tmp_path, args):
    read, write = os.pipe()
    os.close(read)  # like `| head -c0`: every write gets EPIPE
    try:
        out = subprocess.run(
            [*VRAMTOP, *args],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(tmp_path),
            timeout=60,
        )
    finally:
        os.close(write)
    assert (out.returncode, out.stderr) == (0, "")


def test_a_stdout_that_cannot_encode_a_label_escapes_it(tmp_path):
    env = clean_env(tmp_path) | {"PYTHONIOENCODING": "ascii"}
    config = tmp_path / "xdg" / "vramtop" / "config.toml"
    config.parent.mkdir(parents=True)
    # A rule naming a model with non-ASCII letters: the demo's processes then carry it.
    config.write_text('[[attribution]]\npattern = "."\nmodel = "m\u00fcnchen-\u2603"\n')
    out = subprocess.run(
        [*VRAMTOP, "--demo", "--once"], capture_output=True, env=env, timeout=60, cwd=tmp_path
    )
    assert (out.returncode, out.stderr) == (0, b""), out.stderr
    assert out.stdout.isascii() and b"m\\xfcnchen-\\u2603" in out.stdout


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("{tmp}", "Is a directory"),
        ("{tmp}/missing/frame.txt", "No such file or directory"),
        ("/dev/full", "No space left on device"),
        ("/sys/kernel/frame.txt", ""),  # sysfs: read-only for root as for anyone
    ],
)
def test_an_output_file_that_cannot_be_written_is_one_sentence(tmp_path, target, reason):
    target = target.format(tmp=tmp_path)
    out = subprocess.run(
        [*VRAMTOP, "--demo", "--once", "-o", target],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
    )
    assert (out.returncode, out.stdout) == (2, "")
    assert_one_sentence(out.stderr, f"vramtop: cannot write {target}: {reason}")
    assert not list(tmp_path.glob("**/*.tmp-*"))


# ---- signals at any moment of start-up ----


def entry_ready(pid: int) -> bool:
    """The entry has set up its signal handling (it catches SIGTERM from then on)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught.split()[1], 16) >> (signal.SIGTERM - 1) & 1)


def signal_after(argv: list[str], sig: int, delay: float, tmp_path: Path, **kw) -> subprocess.Popen:
    child = subprocess.Popen(argv, env=clean_env(tmp_path), cwd=tmp_path, **kw)
    deadline = time.monotonic() + 20
    while not entry_ready(child.pid) and child.poll() is None:
        assert time.monotonic() < deadline, "the entry never set up its signals"
        time.sleep(0.001)
    time.sleep(delay)
    child.send_signal(sig)
    return child


DELAYS = [0.0, 0.01, 0.03, 0.05, 0.1]


@pytest.mark.parametrize("delay", DELAYS)
@pytest.mark.parametrize(
    ("argv", "sig"),
    [
        ([*VRAMTOP, "--demo", "--once"], signal.SIGINT),
        ([*VRAMTOP, "--demo", "--once", "--json"], signal.SIGTERM),
        ([*VRAMTOP, "--version"], signal.SIGINT),
        ([SCRIPT, "--demo", "--once"], signal.SIGINT),
        ([SCRIPT, "--demo", "--once"], signal.SIGTERM),
    ],
    ids=["m-once-int", "m-json-term", "m-version-int", "script-once-int", "script-once-term"],
)
def test_a_signal_during_start_up_is_a_quiet_exit(tmp_path, argv, sig, delay):
    child = signal_after(
        argv, sig, delay, tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = child.communicate(timeout=20)  # the bug kept it alive or printed a traceback
    # -sig: it came after the output was done, when the default action ends the process.
    assert child.returncode in (0, 128 + sig, -sig), err
    assert err == "", err
    if child.returncode == 0:
        assert out  # it finished: the whole frame is there


@pytest.mark.parametrize(
    ("sig", "delay"),
    [(signal.SIGINT, 0.0), (signal.SIGINT, 0.05), (signal.SIGTERM, 0.0), (signal.SIGTERM, 0.5)],
)
def test_a_signal_to_the_live_view_restores_the_terminal(tmp_path, sig, delay):
    master, slave = pty.openpty()
    env_extra = {"TERM": "xterm-256color"}
    try:
        child = subprocess.Popen(
            [*VRAMTOP, "--demo"],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=clean_env(tmp_path) | env_extra,
            cwd=tmp_path,
        )
        os.close(slave)
        deadline = time.monotonic() + 20
        while not entry_ready(child.pid):
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.001)
        time.sleep(delay)
        child.send_signal(sig)
        screen = b""
        # Read until the child's side is closed, not only while it runs: what it wrote just
        # before exiting (giving the screen back) may still wait in the pty.
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                try:
                    chunk = os.read(master, 1 << 16)
                except OSError:  # EIO: the child's side is closed, everything read
                    break
                if not chunk:
                    break
                screen += chunk
            elif child.poll() is not None:
                break
        child.wait(timeout=5)
    finally:
        os.close(master)
    assert child.returncode in (0, 128 + sig)
    assert b"Traceback" not in screen and b"Error" not in screen
    if b"\x1b[?1049h" in screen:  # the screen was taken: it is given back
        assert screen.rindex(b"\x1b[?1049l") > screen.rindex(b"\x1b[?1049h")
