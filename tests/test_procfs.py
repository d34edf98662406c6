"""/proc read directly says what psutil says: real child processes, this host's memory and CPU."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from vramtop.sources import procfs
from vramtop.sources.procs import ProcessInspector


def _started(child: subprocess.Popen, argv_tail: list[str]) -> None:
    """Until the child runs its own program (not the fork of this one)."""
    deadline = time.monotonic() + 10
    while procfs.cmdline(child.pid)[-len(argv_tail) :] != argv_tail:
        assert time.monotonic() < deadline, procfs.cmdline(child.pid)
        time.sleep(0.01)


@pytest.fixture
def children(tmp_path: Path):
    started: list[subprocess.Popen] = []

    def start(argv: list[str], **kw) -> subprocess.Popen:
        child = subprocess.Popen(argv, stdin=subprocess.PIPE, **kw)
        started.append(child)
        return child

    yield start
    for child in started:
        child.kill()
        child.wait()


def _both(pid: int) -> tuple:
    ours, theirs = ProcessInspector(proc_stat=True), ProcessInspector(proc_stat=False)
    return ours.describe(pid), theirs.describe(pid)


def test_a_long_name_a_quoted_argument_and_the_start_time(children, tmp_path: Path) -> None:
    # The kernel cuts a name at 15 characters; psutil then takes the command line's first word.
    long = tmp_path / "vramtop-a-very-long-interpreter"
    long.symlink_to(sys.executable)
    tail = ["-c", "import time; time.sleep(60)", "--served-model-name", 'a "b" c']
    child = children([str(long), *tail])
    _started(child, tail)
    ours, theirs = _both(child.pid)
    assert ours == theirs
    assert ours.name == "vramtop-a-very-long-interpreter"
    assert ours.argv[-1] == 'a "b" c' and ours.user == pwd.getpwuid(os.getuid()).pw_name
    assert procfs.stat(child.pid).started_at == psutil.Process(child.pid).create_time()
    assert procfs.stat(child.pid).ppid == os.getpid()
    assert procfs.parent(child.pid, procfs.stat(child.pid))[0] == os.getpid()


def test_a_single_argument_with_spaces_splits_as_psutil_splits_it(children) -> None:
    # One NUL-ended word holding spaces: psutil reads it as a rewritten (setproctitle) line.
    child = children(["x y z"], executable="/bin/cat")
    deadline = time.monotonic() + 10
    # Until it runs cat with its arguments: exec names the process before the kernel has set
    # the new command line up (an empty one meanwhile).
    while procfs.stat(child.pid).comm != "cat" or not procfs.cmdline(child.pid):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert procfs.cmdline(child.pid) == ["x", "y", "z"]
    ours, theirs = _both(child.pid)
    assert ours == theirs and ours.name == "cat"


def test_a_command_line_that_is_not_utf8_survives_as_psutil_keeps_it(children) -> None:
    child = children([sys.executable, "-c", "import time; time.sleep(60)", b"\xff\xfe-arg"])
    _started(child, [os.fsdecode(b"\xff\xfe-arg")])
    assert procfs.cmdline(child.pid) == psutil.Process(child.pid).cmdline()
    ours, theirs = _both(child.pid)
    assert ours == theirs


def test_processes_exited_and_gone(children) -> None:
    child = children([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while procfs.stat(child.pid).state != "Z":  # a zombie: exited, not yet reaped
        assert time.monotonic() < deadline
        time.sleep(0.01)
    ours, theirs = _both(child.pid)
    assert ours.detail == theirs.detail and "exited" in ours.detail
    child.wait()
    with pytest.raises(FileNotFoundError):
        procfs.stat(child.pid)
    ours, theirs = _both(child.pid)
    assert ours == theirs and ours.detail.startswith("not visible here")


def test_a_uid_without_a_passwd_entry_is_its_number() -> None:
    uid = 4_000_123
    with pytest.raises(KeyError):
        pwd.getpwuid(uid)
    assert procfs.username(uid) == str(uid)


def test_host_figures_equal_psutils() -> None:
    total, available = procfs.memory()
    mem = psutil.virtual_memory()
    assert total == mem.total
    assert abs(available - mem.available) < 0.05 * total  # it moves between the two reads
    used, disk_total = procfs.disk("/")
    disk = psutil.disk_usage("/")
    assert disk_total == disk.total and abs(used - disk.used) < 0.01 * disk_total
    assert procfs.cpu_count() == psutil.cpu_count()
    ours, theirs = procfs.cpu_times(), psutil.cpu_times()
    assert ours._fields[: len(theirs._fields)] == theirs._fields
    assert abs(ours.user - theirs.user) < 5 and abs(ours.idle - theirs.idle) < 5 * os.cpu_count()
    assert procfs.clock()[0] == psutil.boot_time()


def test_a_process_caught_inside_exec_is_read_again(children, monkeypatch) -> None:
    # exec() names the process before its new command line exists: an empty one then is not
    # who the process is for the rest of its life.
    tail = ["-c", "import time; time.sleep(60)", "--model", "m"]
    child = children([sys.executable, *tail])
    _started(child, tail)
    real = procfs.cmdline
    monkeypatch.setattr(procfs, "cmdline", lambda pid: [])
    inspector = ProcessInspector(proc_stat=True)
    assert inspector.describe(child.pid).argv == ()
    monkeypatch.setattr(procfs, "cmdline", real)
    assert inspector.describe(child.pid).argv[-2:] == ("--model", "m")
