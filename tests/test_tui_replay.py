"""Replay (``--replay FILE``) and recording from the live view (``--record FILE``): the keys
that move through a recording, playback driven by an injected clock, drill-downs, snapshots,
help, and the real ``vramtop --replay`` in tmux."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from test_tui_e2e import Tmux, base_env
from test_tui_support import (
    STEPS,
    T0,
    Clock,
    ScriptedCollector,
    frame_at,
    make_app,
    run,
    screen_text,
    wait_until,
)
from textual.binding import Binding

from vramtop.cli import main
from vramtop.config import Settings
from vramtop.export import render
from vramtop.feeds import replay as replay_feed
from vramtop.feeds.recorded import Recorded
from vramtop.model import AlertReading, Frame, freeze, iso_utc
from vramtop.record import Recorder, Recording, RecordingError
from vramtop.tui.app import VramtopApp
from vramtop.tui.factory import build_app, build_replay_app
from vramtop.tui.keys import REPLAY_KEYS
from vramtop.tui.screens.gpu import GpuScreen
from vramtop.tui.screens.help import HelpScreen
from vramtop.tui.screens.model import ModelScreen
from vramtop.tui.screens.overview import OverviewScreen
from vramtop.tui.widgets.chart import Chart
from vramtop.tui.widgets.frame_table import FrameTable
from vramtop.tui.widgets.status_bar import StatusBar

FRAMES = 300
EVERY = 2.0  # seconds between recorded frames
START = 150  # where the replays below open, as --at would pick
PENDING, FIRING, CLEARED = 100, 110, 200  # the frames where KvCacheFull changes state
# GPU health changes (test_tui_support's fixture): GPU 2 throttles (thermal) from 240 to 269,
# logs an XID 13 at 280. GPU 1's power cap comes and goes with load: info, no stop.
HOT, COOL, XID = 240, 270, 280


def recorded_frame(k: int) -> Frame:
    """The fixed test host every 2 s; KvCacheFull goes pending at 100, fires at 110, clears
    at 200."""
    frame = frame_at(k)
    alerts = frame.alerts
    if PENDING <= k < CLEARED:
        state = "pending" if k < FIRING else "firing"
        kv = AlertReading(
            "KvCacheFull", "critical", state, "llama-70b KV cache full", freeze({}), T0
        )
        alerts = (*alerts, kv)
    return replace(frame, time=T0 + EVERY * k, alerts=alerts)


@pytest.fixture(scope="module")
def recording_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "host.rec"
    with Recorder(path, interval=EVERY) as rec:
        for k in range(FRAMES):
            rec.append(recorded_frame(k))
    return path


@pytest.fixture
def recording(recording_file: Path) -> Iterator[Recording]:
    with Recording.open(recording_file) as rec:
        yield rec


def replay_app(
    rec: Recording, start: int = START, tmp_path: Path | None = None, clock: Clock | None = None
) -> VramtopApp:
    return build_replay_app(
        Settings(),
        rec,
        start,
        env={"XDG_CONFIG_HOME": "/nonexistent"},
        snapshot_dir=tmp_path,
        cursor_blink=False,
        monotonic=clock or Clock(0.0),
    )


def status_text(app: VramtopApp) -> str:
    return app.screen.query_one(StatusBar).text


async def shown(pilot, app: VramtopApp, index: int) -> None:
    """Until frame ``index`` is on screen (decoding runs on its own thread)."""
    await wait_until(pilot, lambda: app.feed.shown_index == index, f"frame {index}")
    await pilot.pause()
    assert app.shown is not None and app.shown.time == T0 + EVERY * index
    assert f"frame {index + 1}/{FRAMES}" in status_text(app)
    assert iso_utc(T0 + EVERY * index) in status_text(app)


def test_opens_paused_at_its_start_frame_without_collecting(recording):
    app = replay_app(recording)

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await shown(pilot, app, START)
            status = status_text(app)
            assert "REPLAY" in status and "paused 1x" in status
            assert isinstance(app.screen, OverviewScreen)
            assert app.screen.query_one("#gpus", FrameTable).keys == ["0", "1", "2", "3"]
            # History is rebuilt from the frames before the position, for sparklines and charts.
            assert app.history.frames_added == START + 1
            assert app.feed.kind == "replay" and app.problem is None  # nothing collected
            await pilot.press("q")
        assert app.return_code == 0

    run(go())


def test_history_after_a_seek_is_bounded(recording, monkeypatch):
    monkeypatch.setattr(replay_feed, "REBUILD_FRAMES", 40)
    app = replay_app(recording)

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await shown(pilot, app, START)
            assert app.history.frames_added == 40  # not the whole file
            used = app.history.gpu(0, "memory_used_bytes", 3600.0, app.shown.time)
            assert used[0][0] == T0 + EVERY * (START - 39)

    run(go())
    monkeypatch.setattr(replay_feed, "REBUILD_SPAN", 30.0)
    assert replay_feed.rebuild_start(recording, START) == START - 15  # 30 s at 2 s


def test_step_forward_and_back_one_frame(recording):
    app = replay_app(recording)

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await shown(pilot, app, START)
            await pilot.press("full_stop")
            await shown(pilot, app, START + 1)
            assert app.history.frames_added == START + 2  # added, as the live view adds
            await pilot.press("comma", "comma")
            await shown(pilot, app, START - 1)
            # Stepping back rebuilds: nothing after the frame shown is in the charts.
            assert app.history.latest is app.shown

    run(go())


def test_seek_a_minute_lands_where_index_at_says(recording):
    app = replay_app(recording)

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await shown(pilot, app, START)
            await pilot.press("right_square_bracket")
            ahead = recording.index_at(T0 + EVERY * START + 60)
            assert ahead == START + 30
            await shown(pilot, app, ahead)
            await pilot.press("left_square_bracket")
            back = recording.index_at(recording.times[ahead] - 60)
            await shown(pilot, app, back)
            await pilot.press("left_square_bracket")
            back = recording.index_at(recording.times[back] - 60)
            await shown(pilot, app, back)
            assert back == START - 30
            await pilot.press("dollar_sign", "right_square_bracket")  # no further than the end
            await shown(pilot, app, FRAMES - 1)

    run(go())


def test_next_and_previous_alert_change(recording):
    app = replay_app(recording, start=0)

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await shown(pilot, app, 0)
            for target in (PENDING, FIRING, CLEARED, HOT, COOL, XID):
                await pilot.press("right_curly_bracket")
                await shown(pilot, app, target)
            await pilot.press("right_curly_bracket")  # no later change: stays, and says so
            await pilot.pause()
            assert app.feed.position == XID
            assert any("No later change" in n.message for n in app._notifications)
            await pilot.press("left_curly_bracket")
            await shown(pilot, app, COOL)
            await pilot.press("N")
            await shown(pilot, app, HOT)
            await pilot.press("n")
            await shown(pilot, app, COOL)

    run(go())


def test_alerts_panel_shows_the_recorded_alerts(recording):
    app = replay_app(recording, start=PENDING - 1)

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await shown(pilot, app, PENDING - 1)
            alerts = app.screen.query_one("#alerts", FrameTable)
            assert not any("KvCacheFull" in k for k in alerts.keys)
            await pilot.press("right_curly_bracket", "right_curly_bracket")
            await shown(pilot, app, FIRING)
            assert any("KvCacheFull" in k for k in alerts.keys)
            row = next(line for line in screen_text(app).splitlines() if "KvCacheFull" in line)
            assert "FIRING" in row

    run(go())


def test_start_and_end(recording):
    app = replay_app(recording)

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await shown(pilot, app, START)
            await pilot.press("0")
            await shown(pilot, app, 0)
            await pilot.press("dollar_sign")
            await shown(pilot, app, FRAMES - 1)

    run(go())


def test_speed_changes_are_shown(recording):
    app = replay_app(recording)

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await shown(pilot, app, START)
            await pilot.press("greater_than_sign")
            assert app.feed.speed == 2.0 and "paused 2x" in status_text(app)
            await pilot.press(*["greater_than_sign"] * 6)
            assert app.feed.speed == 60.0 and "60x" in status_text(app)
            await pilot.press("less_than_sign")
            assert app.feed.speed == 10.0 and "10x" in status_text(app)
            await pilot.press(*["less_than_sign"] * 5)
            assert app.feed.speed == 0.5 and "0.5x" in status_text(app)

    run(go())


def test_play_follows_the_recordings_times_at_the_speed(recording):
    clock = Clock(1000.0)
    app = replay_app(recording, clock=clock)

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await shown(pilot, app, START)
            await pilot.press("space")
            assert app.feed.playing and "▶ 1x" in status_text(app)
            clock.now += 9.0  # 4 frames at 2 s, and 1 s towards the next
            app.tick()
            await shown(pilot, app, START + 4)
            clock.now += 1.0
            app.tick()
            await shown(pilot, app, START + 5)
            assert app.history.frames_added == START + 6  # every frame played is in history
            await pilot.press("greater_than_sign", "greater_than_sign")  # 5x
            clock.now += 4.0  # 20 s of recording: 10 frames
            app.tick()
            await shown(pilot, app, START + 15)
            await pilot.press("p")  # the live view's pause key pauses too
            assert not app.feed.playing
            clock.now += 100.0
            app.tick()
            await pilot.pause()
            assert app.feed.position == START + 15
            await pilot.press("space")
            clock.now += 10_000.0
            app.tick()
            await shown(pilot, app, FRAMES - 1)
            assert not app.feed.playing  # stopped at the end
            assert "paused" in status_text(app)

    run(go())


def test_snapshot_writes_the_frame_shown(recording, tmp_path):
    app = replay_app(recording, tmp_path=tmp_path)

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await shown(pilot, app, START)
            await pilot.press("comma")
            await shown(pilot, app, START - 1)
            await pilot.press("x")
            await wait_until(pilot, lambda: list(tmp_path.glob("*.txt")), "the snapshot")

    run(go())
    (txt,) = tmp_path.glob("*.txt")
    frame = recorded_frame(START - 1)
    stamp = iso_utc(frame.time).replace("-", "").replace(":", "")
    assert txt.name == f"vramtop-gpu-box-01-{stamp}.txt"
    assert txt.read_text() == render(frame, "text")
    assert iso_utc(frame.time) in txt.read_text()


def test_drill_downs_and_back(recording):
    app = replay_app(recording)

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await shown(pilot, app, START)
            await pilot.press("j", "j", "enter")  # list keys still move the cursor
            assert isinstance(app.screen, GpuScreen) and app.screen.index == 2
            assert "REPLAY" in status_text(app)
            used = app.screen.query_one("#mem", Chart).spec.lines[0].points
            assert len(used) == 151  # the 5 minute chart: the frames up to this one
            await pilot.press("full_stop")  # replay keys work in a drill-down
            await shown(pilot, app, START + 1)
            await pilot.press("escape")
            assert isinstance(app.screen, OverviewScreen)
            await pilot.press("tab", "enter")
            assert isinstance(app.screen, ModelScreen)
            assert app.screen.backfill_note == {}  # nothing to backfill from
            await pilot.press("comma")
            await shown(pilot, app, START)
            await pilot.press("escape", "q")
        assert app.return_code == 0

    run(go())


def test_help_lists_the_replay_keys(recording):
    app = replay_app(recording)

    async def go():
        async with app.run_test(size=(100, 40)) as pilot:
            await shown(pilot, app, START)
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            text = app.screen.text.plain
            assert "Replay" in text
            for b in Binding.make_bindings(REPLAY_KEYS):
                assert app.get_key_display(b) in text, b.key
                assert b.description in text, b.description
            assert "Refresh" not in text  # nothing is collected

    run(go())


def test_a_recording_that_cannot_be_read_is_one_sentence(recording_file):
    rec = Recording.open(recording_file)
    app = replay_app(rec)

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await shown(pilot, app, START)
            rec.close()
            await pilot.press("0")
            await wait_until(pilot, lambda: app._notifications, "a notification")
            (note,) = list(app._notifications)
            assert note.message == f"the recording {recording_file} is closed"
            assert app.feed.position == START and app.feed.shown_index == START

    run(go())


# ---- --record with the live view ----


def test_record_keeps_every_frame_the_live_view_collected(tmp_path):
    frames = [frame_at(STEPS + k) for k in range(5)]
    path = tmp_path / "live.rec"
    recorder = Recorder(path)
    app = build_app(
        Settings(interval=3600.0),
        ScriptedCollector(frames),
        env={"XDG_CONFIG_HOME": "/nonexistent"},
        clock=Clock(T0 + STEPS + 1),
        cursor_blink=False,
        recorder=recorder,
    )

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            for n in range(1, len(frames) + 1):
                await wait_until(pilot, lambda n=n: app.frames_received >= n, f"frame {n}")
                if n < len(frames):
                    await pilot.press("r")
            await pilot.pause()
            assert f"REC  {path}" in status_text(app)

    try:
        run(go())
    finally:
        recorder.close()
    with Recording.open(path) as rec:
        assert [rec.frame(i) for i in range(len(rec))] == frames


class FailingRecorder:
    """Fails while ``failing`` is set, as a full disk does."""

    path = "/var/tmp/full.rec"

    def __init__(self) -> None:
        self.failing = True
        self.appended = 0

    def append(self, frame: Frame) -> None:
        if self.failing:
            raise RecordingError(f"cannot write {self.path}: No space left on device")
        self.appended += 1

    def close(self) -> None:
        pass


def test_a_failed_write_is_one_notification_and_shown(tmp_path):
    recorder = FailingRecorder()
    app = make_app(ScriptedCollector([frame_at(STEPS + k) for k in range(4)]), tmp_path=tmp_path)
    app.feed = Recorded(app.feed, recorder)

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.record_problem is not None, "the failure")
            await pilot.press("r")
            await wait_until(pilot, lambda: app.frames_received >= 2, "a second frame")
            await pilot.pause()
            failed = [n for n in app._notifications if n.title == "Recording failed"]
            assert [n.message for n in failed] == [
                "cannot write /var/tmp/full.rec: No space left on device"
            ]  # once, not once a frame
            assert "write failed" in status_text(app)
            recorder.failing = False
            await pilot.press("r")
            await wait_until(pilot, lambda: app.record_problem is None, "recording again")
            await pilot.pause()
            assert recorder.appended == 1 and "write failed" not in status_text(app)

    run(go())


def test_bad_files_are_one_sentence_before_the_screen_is_taken(tmp_path, capsys):
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    target = tmp_path / "missing" / "x.rec"
    assert main(["--demo", "--record", str(target)], env=env) == 2
    assert capsys.readouterr().err.startswith(f"vramtop: cannot write {target}: ")
    assert main(["--replay", str(target)], env=env) == 2
    assert capsys.readouterr().err.startswith(f"vramtop: cannot read {target}: ")


# ---- the real thing, in tmux ----


def test_replay_in_a_real_terminal(recording_file, tmp_path):
    t = Tmux(tmp_path / "tmux.sock", base_env(tmp_path), tmp_path)
    try:
        t.start([sys.executable, "-m", "vramtop", "--replay", str(recording_file), "--at", "+5m"])
        at = iso_utc(T0 + 300)
        text = t.wait_for(lambda s: "REPLAY" in s and at in s, "the replay at +5m")
        assert f"frame {START + 1}/{FRAMES}" in text and "GPUs (4)" in text
        t.keys("]")
        later = iso_utc(T0 + 360)
        t.wait_for(lambda s: later in s and f"frame {START + 31}/" in s, "a minute later")
        t.keys("q")
        t.wait_for(lambda s: "VRAMTOP-EXITED rc=0" in s, "a clean exit")
    finally:
        t.kill()


def test_replay_looks_like_this(snap_compare, recording):
    async def run_before(pilot) -> None:
        await wait_until(pilot, lambda: pilot.app.feed.shown_index == FIRING, "the frame")
        await pilot.pause()

    app = replay_app(recording, start=FIRING)
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)
