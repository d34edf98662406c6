"""Crafted recordings: blocks whose checksums are right but whose payloads are not frames.

Every case goes through the real framing (session start, header block, checksummed blocks,
deflate streams) and the real decoding path. A recording either opens and every frame decodes
into something every exporter and the History can take, or the reader says why in one
RecordingError; the CLI then exits 0 or 2 with one line on stderr. Seeded: a failure replays.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from vramtop.export import render
from vramtop.history import History
from vramtop.model import Frame
from vramtop.record import Recorder, Recording, RecordingError
from vramtop.record.blocks import DELTA, HEADER, KEY, MAGIC, START, block
from vramtop.record.codec import Encoder

T0 = 1795000000.0
CASES = 300


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    from vramtop.config import Settings
    from vramtop.wiring import build_collector

    now = [T0]
    collector = build_collector(Settings(), {}, demo=True, clock=lambda: now[0])
    out = []
    for k in range(4):
        now[0] = T0 + 15 * k
        out.append(collector.collect())
    return out


def start(header: dict | None = None) -> bytes:
    payload = json.dumps(header or {"vramtop": "0", "host": "h", "start": T0, "interval": 2.0})
    return START.pack(MAGIC, 1, 0) + block(HEADER, T0, 0, payload.encode())


def stream(payloads: list[bytes]) -> list[bytes]:
    """Payloads as one deflate stream, one sync-flushed piece per block, as the recorder does."""
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    return [z.compress(p) + z.flush(zlib.Z_SYNC_FLUSH) for p in payloads]


def blocks(tags: list[bytes], payloads: list[bytes], time: float = T0) -> bytes:
    pairs = enumerate(zip(tags, payloads, strict=True))
    return b"".join(block(t, time + k, 0, p) for k, (t, p) in pairs)


# ---- random values and mutations ----


def random_json(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(12 if depth < 4 else 8)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False])
    if pick == 2:
        return rng.choice([0, -1, 1, 2**63, -(2**70), 10**30, 7])
    if pick == 3:
        return rng.choice([0.5, -1e308, 1e308, float("nan"), float("inf"), -0.0, 5e-324])
    if pick in (4, 5):
        return rng.choice(["", "ok", "lost", "x" * 300, "\x00\u202e\u200b", "\udcff"])
    if pick == 6:
        return T0 + rng.uniform(-1e12, 1e12)
    if pick == 7:
        return rng.choice([[], {}, [[]], [0], [[0, {}]], [-1], [99]])
    if pick in (8, 9):
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["host", "gpus", "hostname", "index", "pid", "state", "unavailable", "processes"]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def paths(obj: Any, at: tuple = ()) -> list[tuple]:
    out = [at]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += paths(v, (*at, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += paths(v, (*at, i))
    return out


def mutate(rng: random.Random, obj: Any) -> Any:
    """``obj`` with one value replaced, removed, or given a sibling."""
    obj = json.loads(json.dumps(obj))
    where = rng.choice(paths(obj)[1:])
    parent = obj
    for step in where[:-1]:
        parent = parent[step]
    last = where[-1]
    action = rng.randrange(3)
    if action == 0:
        parent[last] = random_json(rng)
    elif action == 1:
        del parent[last]
    elif isinstance(parent, dict):
        parent[f"{last}_new"] = random_json(rng)
    else:
        parent.insert(rng.randrange(len(parent) + 1), random_json(rng))
    return obj


def dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode("utf-8", "surrogatepass")


def craft(rng: random.Random, key: dict, delta: dict) -> bytes:
    """One crafted recording, of one of several kinds."""
    kind = rng.randrange(9)
    if kind == 0:  # random bytes where the deflate stream should be
        return start() + blocks([KEY], [rng.randbytes(rng.randrange(1, 200))])
    if kind == 1:  # a valid stream of random bytes
        return start() + blocks([KEY], stream([rng.randbytes(rng.randrange(1, 200))]))
    if kind == 2:  # a valid stream of random JSON
        return start() + blocks([KEY], stream([dump(random_json(rng))]))
    if kind == 3:  # a real key frame with one value changed
        return start() + blocks([KEY], stream([dump(mutate(rng, key))]))
    if kind == 4:  # a real key frame, then a delta with one value changed
        return start() + blocks([KEY, DELTA], stream([dump(key), dump(mutate(rng, delta))]))
    if kind == 5:  # a delta that refers to entries the key frame never had
        gpus = rng.choice([[5], [-1], [[9, {}]], [[0, []]], [[0]], [True], [0, 0, 0, 7]])
        return start() + blocks([KEY, DELTA], stream([dump(key), dump({"gpus": gpus})]))
    if kind == 6:  # deltas with no key frame before them
        return start() + blocks([DELTA, DELTA], stream([dump(delta), dump(delta)]))
    if kind == 7:  # a time no writer stamps
        when = rng.choice([float("nan"), float("inf"), -1e300, 1e300, 2.6e11])
        return start() + blocks([KEY], stream([dump(key)]), time=when)
    # A header of the wrong shape, then a good frame.
    header = rng.choice([{"start": "x", "interval": -5}, {"start": 1e300}, {"interval": 1e400}])
    return start(header) + blocks([KEY], stream([dump(key)]))


def assert_reads_or_refuses(path: Path) -> int:
    """Opens ``path`` and decodes every frame; returns how many decoded."""
    try:
        rec = Recording.open(path)
    except RecordingError as err:
        assert "\n" not in str(err)
        return 0
    good = 0
    history = History()
    with rec:
        for i in range(len(rec)):
            try:
                frame = rec.frame(i)
            except RecordingError as err:
                assert str(err).startswith(f"{path}: frame {i + 1} of {len(rec)} cannot be read")
                assert "\n" not in str(err) and len(str(err)) < 400
                continue
            for fmt in ("text", "markdown", "json"):
                render(frame, fmt)
            json.loads(render(frame, "json"), parse_constant=_no_constant)
            history.add(frame)
            good += 1
    return good


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} in JSON output")


@pytest.fixture(scope="module")
def real(frames) -> tuple[dict, dict]:
    enc = Encoder()
    key = json.loads(enc.encode(frames[0], True))
    delta = json.loads(enc.encode(frames[1], False))
    return key, delta


def test_crafted_payloads_are_read_or_refused_in_one_sentence(tmp_path, real):
    rng = random.Random(15)
    path = tmp_path / "crafted.rec"
    outcomes = {"decoded": 0, "refused": 0}
    for case in range(CASES):
        data = craft(rng, *real)
        path.write_bytes(data)
        try:
            good = assert_reads_or_refuses(path)
        except Exception as err:
            raise AssertionError(f"case {case}: {type(err).__name__}: {err}") from err
        outcomes["decoded" if good else "refused"] += 1
    # The fuzz reaches both sides: frames that decode, and frames that are refused.
    assert outcomes["decoded"] > CASES // 10 and outcomes["refused"] > CASES // 10, outcomes


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (
            b'{"host": {"hostname": "h"}, "gpus": [{"index": 1e999, "uuid": null, "name": null}]}',
            "GpuReading.index",
        ),
        (b'{"host": {"hostname": 5}}', "HostReading.hostname holds int where text belongs"),
        (b'{"host": {"hostname": "h", "cpu_count": 99999999999999999999}}', "cpu_count"),
        (b'{"gpus": []}', "a Frame has no host"),
        (b'{"host": {"hostname": "h"}, "sources": [{"name": "n", "state": "odd"}]}', "state"),
        (b'{"host": [1]}', "a HostReading is not an object"),
        (b"\xff\xfe", "its data is not a frame"),
    ],
)
def test_each_kind_of_bad_payload_names_the_frame_and_why(tmp_path, payload, reason):
    path = tmp_path / "bad.rec"
    path.write_bytes(start() + blocks([KEY], stream([payload])))
    with Recording.open(path) as rec, pytest.raises(RecordingError) as caught:
        rec.frame(0)
    assert str(caught.value).startswith(f"{path}: frame 1 of 1 cannot be read (")
    assert reason in str(caught.value)


def test_a_payload_that_inflates_without_end_is_refused(tmp_path):
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = z.compress(b" " * (65 << 20)) + z.flush(zlib.Z_SYNC_FLUSH)  # 64 KiB on disk
    path = tmp_path / "bomb.rec"
    path.write_bytes(start() + blocks([KEY], [bomb]))
    with Recording.open(path) as rec, pytest.raises(RecordingError, match="more than 64 MiB"):
        rec.frame(0)


def test_non_finite_figures_read_as_not_available(tmp_path, real):
    key = json.loads(json.dumps(real[0]))
    key["gpus"][0]["temperature_c"] = math.nan
    key["host"]["cpu_percent"] = math.inf
    key["models"][0]["extras"] = {"ttft_p95_seconds": math.nan, "kv_cache_usage_ratio": 0.5}
    path = tmp_path / "nan.rec"
    path.write_bytes(start() + blocks([KEY], stream([dump(key)])))
    with Recording.open(path) as rec:
        frame = rec.frame(0)
    assert frame.gpus[0].temperature_c is None and frame.host.cpu_percent is None
    assert dict(frame.models[0].extras) == {"kv_cache_usage_ratio": 0.5}


def test_a_good_frame_after_a_bad_one_still_reads(tmp_path, frames):
    """Damage is one frame's: the next key frame's stream is read as before."""
    path = tmp_path / "mixed.rec"
    with Recorder(path, key_every=1) as rec:
        for f in frames:
            rec.append(f)
    good = path.read_bytes()
    path.write_bytes(good + start() + blocks([KEY], stream([b'{"host": 1}'])))
    with Recording.open(path) as rec:
        assert len(rec) == len(frames) + 1
        assert rec.frame(1).time == frames[1].time
        with pytest.raises(RecordingError, match=f"frame {len(frames) + 1} of"):
            rec.frame(len(frames))
        assert rec.frame(0).time == frames[0].time


# ---- the real CLI ----


def test_the_cli_exits_0_or_2_with_one_line(tmp_path, real):
    rng = random.Random(1515)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRAMTOP_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    seen = set()
    for case in range(8):
        path = tmp_path / f"c{case}.rec"
        path.write_bytes(craft(rng, *real))
        for at in ([], ["--at", "+0s"]):
            out = subprocess.run(
                [sys.executable, "-m", "vramtop", "--replay", str(path), "--once", "--json", *at],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
            )
            seen.add(out.returncode)
            assert out.returncode in (0, 2), out.stderr
            if out.returncode == 2:
                assert out.stdout == "" and out.stderr.count("\n") == 1, out.stderr
                assert out.stderr.startswith("vramtop: ") and "Traceback" not in out.stderr
            else:
                assert out.stderr == ""
                json.loads(out.stdout, parse_constant=_no_constant)
    assert seen == {0, 2}


# ---- the live replay ----


def damaged_at_the_end(path: Path, frames: list[Frame]) -> None:
    """Good frames, then a session whose only frame has a valid checksum and a bad payload."""
    with Recorder(path, key_every=1) as rec:
        for f in frames:
            rec.append(f)
    with path.open("ab") as f:
        f.write(start() + blocks([KEY], stream([b'{"host": {"hostname": 7}}']), time=T0 + 60))


def test_the_live_replay_says_a_frame_is_bad_and_keeps_running(tmp_path, frames):
    from test_tui_support import run, wait_until

    from vramtop.config import Settings
    from vramtop.tui.factory import build_replay_app

    path = tmp_path / "live.rec"
    damaged_at_the_end(path, frames)
    with Recording.open(path) as rec:
        app = build_replay_app(
            Settings(), rec, 0, env={"XDG_CONFIG_HOME": "/nonexistent"}, cursor_blink=False
        )

        async def go() -> None:
            async with app.run_test(size=(120, 40)) as pilot:
                await wait_until(pilot, lambda: app.feed.shown_index == 0, "frame 0")
                await pilot.press("dollar_sign")  # the end: the bad frame
                await wait_until(pilot, lambda: app._notifications, "a notification")
                (note,) = list(app._notifications)
                assert note.message.startswith(f"{path}: frame 5 of 5 cannot be read (")
                assert "HostReading.hostname" in note.message
                assert app.feed.shown_index == 0 and app.is_running
                await pilot.press("full_stop")  # and the good frames still step
                await wait_until(pilot, lambda: app.feed.shown_index == 1, "frame 1")

        run(go())


def test_a_live_replay_whose_start_is_bad_exits_2_before_the_screen(tmp_path, frames):
    path = tmp_path / "start.rec"
    damaged_at_the_end(path, frames)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VRAMTOP_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    out = subprocess.run(
        [sys.executable, "-m", "vramtop", "--replay", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == f"vramtop: {path}: frame 5 of 5 cannot be read (" + (
        "HostReading.hostname holds int where text belongs)\n"
    )
