"""Recordings: fidelity, appending, torn files, real recorder processes, replay and seeking."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest
import samples

from vramtop.cli import main
from vramtop.export import render
from vramtop.model import (
    AlertReading,
    Frame,
    GpuReading,
    HostReading,
    InstanceFigures,
    ModelReading,
    ProcessReading,
    SourceStatus,
    freeze,
    iso_utc,
)
from vramtop.record import FORMAT_VERSION, Recorder, Recording, RecordingError
from vramtop.record.blocks import BLOCK, HEADER, MAGIC, START, block

T0 = 1795000000.0


@pytest.fixture(scope="module")
def demo() -> list[Frame]:
    """The demo host every 15 s for 10 minutes: incidents go pending, fire and clear."""
    from vramtop.config import Settings
    from vramtop.wiring import build_collector

    now = [T0]
    collector = build_collector(Settings(), {}, demo=True, clock=lambda: now[0])
    frames = []
    for k in range(40):
        now[0] = T0 + 15 * k
        frames.append(collector.collect())
    return frames


def varied() -> Frame:
    """Every kind of field: remote hosts and GPUs, alerts with labels, stale sources, extras,
    undecodable bytes in a command line, ints in float fields, the demo flag."""
    base = samples.frame()
    odd = ProcessReading(
        7, 0, 0, "compute+graphics", "r\u00f6ot", "py", "x --k \udcff\udc80 \u2603"
    )
    remote = GpuReading(0, "GPU-r", "NVIDIA L40S", memory_used_bytes=1, host="node-2:9400")
    model = ModelReading(
        "m\u00fcnchen",
        None,
        (7,),
        (0,),
        ("rule", "prometheus"),
        0.1,
        0.2,
        None,
        3,
        0.0,
        None,
        ("a:1", "b:2"),
        "vllm",
        freeze({"ttft_p95_seconds": 1e-9, "kv_cache_usage_ratio": 1.0}),
        freeze({"latency_p99_seconds": "no histogram"}),
        (InstanceFigures("a", 2**40, 0.25, None, 1.5), InstanceFigures("b")),
    )
    alerts = (
        AlertReading("VRAMExhausted", "critical", "firing", samples.HOSTILE, freeze({"gpu": "3"})),
        AlertReading("Slow", "warning", "pending", "", freeze({}), T0 - 30.5, True, "alertmanager"),
    )
    return replace(
        base,
        time=T0 + 0.123456789,
        gpus=(*base.gpus, replace(base.gpus[0], processes=(odd,)), remote),
        models=(model, *base.models),
        alerts=alerts,
        sources=(
            *base.sources,
            SourceStatus("prometheus", "error", "HTTP 503 from Prometheus"),
            SourceStatus("alerts", "disabled"),
        ),
        hosts=(
            HostReading("node-2", 1.5, load_average=None, instance="node-2", up=True),
            HostReading("node-3", up=False, last_seen=T0 - 3.25, detail="refused \u202e"),
        ),
        demo=True,
    )


def assert_same(a: object, b: object, where: str = "frame") -> None:
    """Equal, and of the same types all the way down (MappingProxyType, tuple, None)."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, tuple):
        assert len(a) == len(b), where  # type: ignore[arg-type]
        for i, (x, y) in enumerate(zip(a, b, strict=True)):  # type: ignore[call-overload]
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, MappingProxyType):
        assert dict(a) == dict(b), where  # type: ignore[call-overload]
    else:
        assert a == b, where


def write(path: Path, frames: list[Frame], **kw) -> None:
    with Recorder(path, **kw) as rec:
        for f in frames:
            rec.append(f)


def read_all(path: Path) -> list[Frame]:
    with Recording.open(path) as rec:
        return [rec.frame(i) for i in range(len(rec))]


# ---- fidelity ----


def test_round_trip_keeps_every_field(tmp_path, demo):
    frames = [samples.frame(), samples.empty_frame(), varied(), *demo[15:30], varied()]
    frames.append(samples.frame())
    frames = [replace(f, time=T0 + i) for i, f in enumerate(frames)]
    path = tmp_path / "r.rec"
    write(path, frames, interval=2.0, key_every=7)
    back = read_all(path)
    assert len(back) == len(frames)
    for i, (want, got) in enumerate(zip(frames, back, strict=True)):
        assert got == want
        assert_same(got, want, f"frame {i}")
    with Recording.open(path) as rec:  # random order: key frames, resume points, cursor
        order = list(range(len(frames))) * 2
        random.Random(3).shuffle(order)
        for i in order:
            assert rec.frame(i) == frames[i]
        assert rec.frame(-1) == frames[-1]
        with pytest.raises(IndexError):
            rec.frame(len(frames))


def test_header_holds_only_what_describes_the_session(tmp_path):
    path = tmp_path / "h.rec"
    write(path, [samples.frame()], interval=0.5)
    data = path.read_bytes()
    assert data.startswith(MAGIC)
    _, version, _ = START.unpack_from(data)
    tag, *_, length, _ = BLOCK.unpack_from(data, START.size)
    assert (version, tag) == (FORMAT_VERSION, HEADER)
    header = json.loads(data[START.size + BLOCK.size : START.size + BLOCK.size + length])
    assert header == {"vramtop": "0.1.0", "host": "gpu-box-01", "start": T0, "interval": 0.5}
    (s,) = Recording.open(path).sessions
    assert (s.format, s.host, s.start, s.interval, s.first, s.count) == (
        1,
        "gpu-box-01",
        T0,
        0.5,
        0,
        1,
    )


def test_a_new_session_appends(tmp_path, demo):
    path = tmp_path / "a.rec"
    write(path, demo[:5], interval=15.0)
    write(path, demo[5:8], interval=0.5)
    with Recording.open(path) as rec:
        assert [(s.first, s.count, s.interval) for s in rec.sessions] == [(0, 5, 15.0), (5, 3, 0.5)]
        assert rec.dropped_bytes == 0
    assert read_all(path) == demo[:8]


def test_appends_from_several_threads(tmp_path):
    frames = synthetic(200)
    path = tmp_path / "threads.rec"
    with Recorder(path, key_every=16) as rec:
        threads = [
            threading.Thread(target=lambda part=frames[n::4]: [rec.append(f) for f in part])
            for n in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    back = read_all(path)
    assert sorted(back, key=lambda f: f.time) == frames


def test_a_failed_write_loses_only_that_frame(tmp_path, monkeypatch, demo):
    path = tmp_path / "full.rec"
    real = os.write
    calls = []

    def disk_full_once(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real(fd, bytes(data)[: len(data) // 2])  # half a block, then the disk is full
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    with Recorder(path, key_every=50) as rec:
        rec.append(demo[0])
        rec.append(demo[1])
        monkeypatch.setattr(os, "write", disk_full_once)
        with pytest.raises(RecordingError, match=f"cannot write {path}: No space left on device"):
            rec.append(demo[2])
        rec.append(demo[3])
        rec.append(demo[4])
    with Recording.open(path) as back:
        assert back.dropped_bytes == 0 and len(back.sessions) == 1
    assert read_all(path) == [demo[0], demo[1], demo[3], demo[4]]


def test_two_recorders_cannot_write_one_file(tmp_path):
    path = tmp_path / "l.rec"
    with Recorder(path), pytest.raises(RecordingError, match="being recorded by another"):
        Recorder(path)


# ---- torn and damaged files ----


def test_a_torn_last_frame_drops_only_that_frame(tmp_path, demo):
    path = tmp_path / "t.rec"
    frames = demo[:12]
    write(path, frames, key_every=5)
    data = path.read_bytes()
    with Recording.open(path) as rec:
        last = rec._idx.offsets[-1] - BLOCK.size
    cut = tmp_path / "cut.rec"
    for end in range(last, len(data)):
        cut.write_bytes(data[:end])
        with Recording.open(cut) as rec:
            assert len(rec) == len(frames) - 1, end
            assert rec.dropped_bytes == end - last
            assert rec.frame(-1) == frames[-2]
    assert read_all(cut) == frames[:-1]
    # The next recorder cuts the torn tail off and continues after the last good frame.
    write(cut, demo[20:23])
    with Recording.open(cut) as rec:
        assert (len(rec.sessions), rec.dropped_bytes) == (2, 0)
    assert read_all(cut) == frames[:-1] + demo[20:23]


def test_a_torn_session_start_keeps_the_sessions_before(tmp_path, demo):
    path = tmp_path / "s.rec"
    write(path, demo[:3])
    first = path.stat().st_size
    write(path, demo[3:5])
    data = path.read_bytes()
    for end in (first + 1, first + len(MAGIC), first + START.size + 3, first + START.size + 40):
        path.write_bytes(data[:end])
        assert read_all(path) == demo[:3]


def test_damage_in_the_middle_skips_to_the_next_session(tmp_path, demo):
    a, b = tmp_path / "a.rec", tmp_path / "b.rec"
    write(a, demo[:6])
    write(b, demo[6:9])
    torn = a.read_bytes()[:-10]
    joined = tmp_path / "j.rec"
    joined.write_bytes(torn + b.read_bytes())
    with Recording.open(joined) as rec:
        assert rec.dropped_bytes > 0
    assert read_all(joined) == demo[:5] + demo[6:9]
    flipped = bytearray(a.read_bytes())
    flipped[-5] ^= 0xFF  # a checksum catches a changed byte
    joined.write_bytes(bytes(flipped))
    assert read_all(joined) == demo[:5]


# ---- versions and files that are not recordings ----


def newer_file(path: Path, prefix: bytes = b"") -> None:
    later = START.pack(MAGIC, FORMAT_VERSION + 1, 0) + block(HEADER, T0, 0, b'{"x":1}')
    path.write_bytes(prefix + later + b"\x00" * 50)


def cli(capsys, *argv: str, env: dict | None = None) -> tuple[int, str, str]:
    code = main(list(argv), env=env or {"XDG_CONFIG_HOME": "/nonexistent-vramtop-test"})
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_newer_format_is_one_clear_sentence(tmp_path, capsys, demo):
    path = tmp_path / "new.rec"
    newer_file(path)
    with pytest.raises(RecordingError, match="newer vramtop"):
        Recording.open(path)
    with pytest.raises(RecordingError, match="newer vramtop"):
        Recorder(path)
    code, out, err = cli(capsys, "--replay", str(path), "--once")
    assert (code, out) == (2, "")
    assert err.startswith(f"vramtop: {path} was written by a newer vramtop (recording format 2")
    assert err.count("\n") == 1 and "upgrade vramtop" in err
    # A newer vramtop appended a session to an older recording.
    old = tmp_path / "old.rec"
    write(old, demo[:2])
    newer_file(old, old.read_bytes())
    with pytest.raises(RecordingError, match="format 2"):
        Recording.open(old)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello, I am a text file\n" * 3, "is not a vramtop recording"),
        (b"\x1f\x8b\x08\x00", "is not a vramtop recording"),
        (b"", "holds no frames"),
        (None, "cannot read"),
    ],
)
def test_not_a_recording_is_one_clear_sentence(tmp_path, capsys, content, message):
    path = tmp_path / "x.rec"
    if content is not None:
        path.write_bytes(content)
    code, out, err = cli(capsys, "--replay", str(path), "--once", "--json")
    assert (code, out) == (2, "")
    assert err.startswith("vramtop: ") and message in err and err.count("\n") == 1
    if content:  # the recorder will not append to someone else's file either
        with pytest.raises(RecordingError, match="not a vramtop recording"):
            Recorder(path)
        assert path.read_bytes() == content


# ---- files that are not regular files ----


def vramtop_child(tmp_path: Path, *argv: str, stdin=subprocess.DEVNULL) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRAMTOP_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    out = subprocess.run(
        [sys.executable, "-m", "vramtop", *argv],
        stdin=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=30,  # the bug: reading a FIFO blocked until a writer came, forever
    )
    return out.returncode, out.stdout, out.stderr


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda p: os.mkfifo(p), "a pipe (FIFO)"),
        (lambda p: p.mkdir(), "a directory"),
        (lambda p: p.symlink_to("/dev/zero"), "a device"),
        (lambda p: p.symlink_to("/dev/null"), "a device"),
    ],
    ids=["fifo", "directory", "dev-zero", "dev-null"],
)
def test_what_is_not_a_regular_file_is_refused_at_once(tmp_path, make, kind):
    path = tmp_path / "x.rec"
    make(path)
    for argv in (
        ["--replay", str(path), "--once"],
        ["--demo", "--record", str(path), "--headless"],
    ):
        code, out, err = vramtop_child(tmp_path, *argv)
        assert (code, out) == (2, ""), err
        if kind == "a directory" and "--record" in argv:
            assert err == f"vramtop: cannot write {path}: Is a directory\n"
        else:
            assert err == f"vramtop: {path} is {kind}: a recording is a regular file\n"
    assert not path.is_file()


def test_dev_stdin_is_read_when_it_is_a_file_and_refused_when_a_pipe(tmp_path, recorded, demo):
    with recorded.open("rb") as f:
        code, out, err = vramtop_child(tmp_path, "--replay", "/dev/stdin", "--once", stdin=f)
    assert (code, err) == (0, "")
    assert out == render(demo[-1], "text")
    code, out, err = vramtop_child(
        tmp_path, "--replay", "/dev/stdin", "--once", stdin=subprocess.PIPE
    )
    assert (code, out) == (2, "")
    assert err == "vramtop: /dev/stdin is a pipe (FIFO): a recording is a regular file\n"


# ---- real recorder processes ----


# What CPython prints when a signal lands while it starts, before any vramtop code runs (or a
# traceback through <frozen runpy> / site alone, naming no vramtop file).
CPYTHON_INTERRUPTED = ("Could not import runpy module", "Fatal Python error: init_import_site")


def start_recorder(tmp_path: Path, path: Path, *extra: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRAMTOP_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    argv = ["--demo", "--record", str(path), "--headless", "--interval", "0.2", *extra]
    return subprocess.Popen(
        [sys.executable, "-m", "vramtop", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )


def wait_for_frames(proc: subprocess.Popen, path: Path, n: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.stat().st_size:
            with Recording.open(path) as rec:
                if len(rec) >= n:
                    return
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no {n} frames: {proc.communicate()}")


def test_a_killed_recorder_leaves_a_readable_file(tmp_path):
    path = tmp_path / "k.rec"
    proc = start_recorder(tmp_path, path)
    wait_for_frames(proc, path, 4)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    with Recording.open(path) as rec:
        assert len(rec) >= 4
        frames = [rec.frame(i) for i in range(len(rec))]
    assert all(f.demo and f.host.hostname == "demo-gpu-host" for f in frames)
    assert [f.time for f in frames] == sorted(f.time for f in frames)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_stop_cleanly(tmp_path, sig):
    path = tmp_path / "s.rec"
    proc = start_recorder(tmp_path, path)
    wait_for_frames(proc, path, 3)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out == ""
    assert err.startswith(f"vramtop: recording to {path} every 0.2 s") and err.count("\n") == 1
    with Recording.open(path) as rec:
        assert len(rec) >= 3 and rec.dropped_bytes == 0
        assert rec.sessions[0].interval == 0.2
        assert rec.frame(-1).demo


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2, 0.5])
def test_a_recorder_stopped_at_start_up_leaves_nothing_or_a_valid_file(tmp_path, sig, delay):
    path = tmp_path / "early.rec"
    proc = start_recorder(tmp_path, path)
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    if err.startswith(CPYTHON_INTERRUPTED) or ("KeyboardInterrupt" in err and "vramtop" not in err):
        # CPython itself was interrupted before `-m` could run any vramtop code: nothing written.
        assert proc.returncode != 0 and not path.exists(), err
        return
    assert "Traceback" not in err, err
    if sig != signal.SIGKILL:
        assert proc.returncode in (0, 128 + sig, -sig), err
    if not path.exists():
        return
    with Recording.open(path) as rec:  # whatever moment it stopped: a recording
        assert rec.dropped_bytes == 0
        frames = [rec.frame(i) for i in range(len(rec))]
    assert all(f.demo for f in frames)
    if not frames:  # killed before its first frame: replaying it says so
        code, out, err = vramtop_child(tmp_path, "--replay", str(path), "--once")
        assert (code, out, err) == (2, "", f"vramtop: {path} holds no frames\n")


def test_a_recorder_that_never_appended_removes_the_file_it_created(tmp_path, demo):
    path = tmp_path / "none.rec"
    Recorder(path).close()
    assert not path.exists()
    write(path, demo[:1])
    Recorder(path).close()  # an existing recording stays as it was
    assert len(read_all(path)) == 1


def test_duration_stops_by_itself(tmp_path):
    path = tmp_path / "d.rec"
    proc = start_recorder(tmp_path, path, "--duration", "1s")
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode, out) == (0, ""), err
    with Recording.open(path) as rec:
        assert len(rec) >= 1 and rec.dropped_bytes == 0


def test_an_unwritable_path_is_one_sentence(tmp_path, capsys):
    for target in (tmp_path / "missing" / "x.rec", tmp_path):
        code, out, err = cli(capsys, "--demo", "--record", str(target), "--headless")
        assert (code, out) == (2, "")
        assert err.startswith(f"vramtop: cannot write {target}: ") and err.count("\n") == 1


# ---- replay --once ----


@pytest.fixture(scope="module")
def recorded(tmp_path_factory, demo) -> Path:
    path = tmp_path_factory.mktemp("replay") / "demo.rec"
    write(path, demo, interval=15.0, key_every=8)
    return path


@pytest.mark.parametrize(
    ("at", "index"),
    [
        (None, 39),
        (iso_utc(T0 + 15 * 3), 3),
        (iso_utc(T0 + 15 * 3 + 14), 3),
        (iso_utc(T0).replace("Z", "+00:00"), 0),
        (iso_utc(T0 + 15 * 39), 39),
        ("-5m", 19),
        ("-0s", 39),
        ("+90s", 6),
        ("+0", 0),
        ("+1m30s", 6),
        ("-9m45s", 0),
    ],
)
def test_replay_once_prints_the_frame_at_that_moment(capsys, recorded, demo, at, index):
    argv = ["--replay", str(recorded), "--once"] + ([] if at is None else ["--at", at])
    code, out, err = cli(capsys, *argv)
    assert (code, err) == (0, "")
    assert out == render(demo[index], "text")


def test_replay_once_in_every_format(capsys, tmp_path, recorded, demo):
    code, out, _ = cli(capsys, "--replay", str(recorded), "--at", "+3m", "--json")
    assert code == 0 and out == render(demo[12], "json")
    target = tmp_path / "note.md"
    code, out, _ = cli(
        capsys, "--replay", str(recorded), "--at=-2m", "--format", "markdown", "-o", str(target)
    )
    assert (code, out) == (0, "")
    assert target.read_text() == render(demo[31], "markdown")


@pytest.mark.parametrize(
    "at", [iso_utc(T0 - 1), iso_utc(T0 + 15 * 39 + 1), "-11m", "+1d", "+9m46s"]
)
def test_a_moment_outside_the_recording_is_one_sentence(capsys, recorded, at):
    code, out, err = cli(capsys, "--replay", str(recorded), "--once", "--at", at)
    assert (code, out) == (2, "")
    assert "is outside the recording, which runs from 2026-11-18T" in err
    assert err.startswith(f"vramtop: --at {at}") and err.count("\n") == 1


@pytest.mark.parametrize("at", ["yesterday", "-5x", "2026-13-01T00:00:00Z", "+"])
def test_a_bad_moment_is_one_sentence(capsys, recorded, at):
    code, out, err = cli(capsys, "--replay", str(recorded), "--once", "--at", at)
    assert (code, out) == (2, "")
    assert err.startswith("vramtop: --at must be a time like ") and err.count("\n") == 1


NINES = "9" * 400  # a number too long for a float: inf


@pytest.mark.parametrize(
    ("at", "shown"),
    [
        ("-999999999d", "-999999999d (before the year 1)"),
        ("+99999999999999999999d", "+99999999999999999999d (after the year 9999)"),
        (f"-{NINES[:300]}", f"-{NINES[:198]}\u2026 (before the year 1)"),
        ("0001-01-01T00:00Z", "0001-01-01T00:00Z"),
        ("0001-01-01T00:00+01:00", "0001-01-01T00:00+01:00"),
        ("9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59-01:00"),
    ],
)
def test_a_moment_beyond_the_calendar_is_one_sentence(capsys, recorded, at, shown):
    code, out, err = cli(capsys, "--replay", str(recorded), "--once", "--at", at)
    assert (code, out) == (2, "")
    assert err.startswith(f"vramtop: --at {shown} is outside the recording, which runs from ")
    assert err.count("\n") == 1 and len(err) < 400


@pytest.mark.parametrize("at", ["+1e400s", "99999-01-01", f"+{NINES}s", "+inf", "+nan", "\x00"])
def test_a_moment_that_is_no_number_is_one_sentence(capsys, recorded, at):
    code, out, err = cli(capsys, "--replay", str(recorded), "--once", "--at", at)
    assert (code, out) == (2, "")
    assert err.startswith("vramtop: --at must be a time like ")
    assert err.count("\n") == 1 and len(err) < 400


@pytest.mark.parametrize(
    ("duration", "message"),
    [
        ("99999999999d", "--duration '99999999999d' is longer than the longest a recording"),
        ("36501d", "is longer than the longest a recording may run, 100 years"),
        ("1e309h", "--duration must be a span like 10m or 24h, got '1e309h'"),
        (NINES, f"--duration must be a span like 10m or 24h, got '{NINES[:199]}\u2026'"),
        ("-1s", "--duration must be a span"),
        ("0ms", "--duration must be a span"),
    ],
)
def test_a_duration_out_of_range_is_one_sentence(capsys, tmp_path, duration, message):
    target = tmp_path / "G"
    code, out, err = cli(
        capsys, "--demo", "--record", str(target), "--headless", f"--duration={duration}"
    )
    assert (code, out) == (2, "")
    assert err.startswith("vramtop: ") and message in err and err.count("\n") == 1
    assert not target.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--replay", "F", "--demo"],
            "--replay shows a recording, so it cannot be combined with --demo",
        ),
        (
            ["--replay", "F", "--prometheus", "http://p:9090"],
            "cannot be combined with --prometheus",
        ),
        (["--replay", "F", "--record", "G"], "cannot be combined with --record"),
        (
            ["--replay", "F", "--scrape", "http://s:8000/metrics"],
            "cannot be combined with --scrape",
        ),
        (
            ["--record", "G", "--once"],
            "--record records every frame, so it cannot be combined with --once",
        ),
        (["--record", "G", "--json", "--headless"], "cannot be combined with --json"),
        (["--headless"], "--headless records without the live view: use it with --record FILE"),
        (["--record", "G", "--duration", "1m"], "--duration ends a headless recording"),
        (
            ["--at", "-5m", "--once"],
            "--at picks a moment of a recording: use it with --replay FILE",
        ),
        (["--record", "G", "--headless", "--duration", "soon"], "--duration must be a span"),
        (["--record", "G", "--headless", "--duration", "0s"], "--duration must be a span"),
    ],
)
def test_flags_that_do_not_go_together(capsys, tmp_path, argv, message):
    code, out, err = cli(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith("vramtop: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "G").exists()


# ---- seeking a long recording ----


def synthetic(n: int, start: float = T0) -> list[Frame]:
    """Small frames that change every step; alerts change at known places."""
    frames = []
    for k in range(n):
        alerts = ()
        if k % 97 < 20:
            state = "pending" if k % 97 < 5 else "firing"
            alerts = (AlertReading("QueueBacklog", "warning", state, "", freeze({"m": "a"})),)
        if k % 250 > 240:
            alerts = (*alerts, AlertReading("GpuLost", "critical", "firing"))
        proc = ProcessReading(100 + k // 500, 0, 2**30 + (k % 7) * 2**21, command=f"srv {k // 500}")
        gpu = GpuReading(0, "GPU-a", "H100", memory_used_bytes=k * 4096, processes=(proc,))
        host = HostReading("box", cpu_percent=float(k % 100))
        frames.append(Frame(start + 2 * k + (k // 1000) * 60, host, (gpu,), alerts=alerts))
    return frames


def test_seeking_a_long_recording(tmp_path):
    frames = synthetic(3000)
    path = tmp_path / "long.rec"
    write(path, frames[:1800], key_every=100)
    write(path, frames[1800:], key_every=64)
    times = [f.time for f in frames]
    with Recording.open(path) as rec:
        assert len(rec) == 3000 and list(rec.times) == times
        assert (rec.start, rec.end) == (times[0], times[-1])
        rng = random.Random(5)
        for i in [0, 1, 99, 100, 101, 1799, 1800, 2999, *rng.sample(range(3000), 150)]:
            assert rec.index_at(times[i]) == i
            assert rec.index_at(times[i] + 1.5) == i  # between frames: the one still shown
            assert rec.frame(i) == frames[i]
        for i in range(2500, 2300, -1):  # stepping back
            assert rec.frame(i) == frames[i]
        assert rec.index_at(times[999] + 30) == 999  # inside a gap
        assert rec.index_at(times[0] - 0.001) is None
        assert rec.index_at(times[-1] + 3600) == 2999

        sets = [frozenset((a.name, a.state) for a in f.alerts) for f in frames]
        changes = [i for i in range(1, 3000) if sets[i] != sets[i - 1]]
        assert len(changes) > 60
        for i in range(3000):
            after = [c for c in changes if c > i]
            before = [c for c in changes if c < i]
            assert rec.index_of_next_alert_change(i) == (after[0] if after else None)
            assert rec.index_of_previous_alert_change(i) == (before[-1] if before else None)


def test_seeking_when_the_clock_stepped_back(tmp_path):
    frames = [replace(f, time=T0 + t) for f, t in zip(synthetic(5), [0, 2, 4, 3, 6], strict=True)]
    path = tmp_path / "c.rec"
    write(path, frames)
    with Recording.open(path) as rec:
        assert [rec.index_at(T0 + t) for t in (0, 2, 3, 3.5, 4, 5, 6)] == [0, 1, 3, 3, 2, 2, 4]
        assert (rec.start, rec.end) == (T0, T0 + 6)
