"""The live view's behaviour through Pilot: keys, drill-downs, filter, sort, pause, refresh,
interval, snapshots, help, hostile text and a collector that hangs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from test_tui_support import (
    STEPS,
    T0,
    BackfillCollector,
    Clock,
    CountingCollector,
    HangingCollector,
    ScriptedCollector,
    frame_at,
    make_app,
    prefilled_history,
    run,
    screen_text,
    wait_until,
)
from textual.binding import Binding

from vramtop.config import Settings
from vramtop.feeds import live
from vramtop.feeds.live import MIN_INTERVAL
from vramtop.tui.app import VramtopApp
from vramtop.tui.keys import LIVE_VIEW_KEYS, help_sections
from vramtop.tui.screens.gpu import GpuScreen
from vramtop.tui.screens.help import HelpScreen
from vramtop.tui.screens.model import ModelScreen
from vramtop.tui.screens.overview import OverviewScreen
from vramtop.tui.widgets.chart import Chart
from vramtop.tui.widgets.frame_table import FrameTable
from vramtop.tui.widgets.status_bar import StatusBar


def table(app: VramtopApp, selector: str) -> FrameTable:
    return app.screen.query_one(selector, FrameTable)


def status_text(app: VramtopApp) -> str:
    return app.screen.query_one(StatusBar).text


async def started(pilot, app: VramtopApp, frames: int = 1) -> None:
    await wait_until(pilot, lambda: app.frames_received >= frames, f"{frames} frame(s)")
    await pilot.pause()


def test_overview_shows_gpus_models_alerts_host_and_sources():
    app = make_app(ScriptedCollector([frame_at(STEPS, demo=True)]))

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await started(pilot, app)
            assert isinstance(app.screen, OverviewScreen)
            assert table(app, "#gpus").keys == ["0", "1", "2", "3"]
            assert table(app, "#models").keys == ["llama-70b", "qwen-7b", "mistral-7b"]
            text = screen_text(app)
            for needle in (
                "DEMO",
                "gpu-box-01",
                "LOST",  # a lost GPU is marked, not hidden
                "n/a" if "n/a" in text else "–",  # no serving metrics: a dash, never 0
                "FIRING",
                "prometheus stale since",
                "alerts error: connection refused",
                "CPU 42% of 64",
            ):
                assert needle in text, needle
            # Firing first, then pending; silenced last.
            assert [k.split(":")[1] for k in table(app, "#alerts").keys] == [
                "ModelQueueBacklog",
                "HighLatency",
                "VRAMExhausted",
            ]

    run(go())


def test_values_beyond_targets_are_coloured():
    app = make_app(ScriptedCollector([frame_at(STEPS)]))

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await started(pilot, app)
            models = table(app, "#models")
            row = models.keys.index("qwen-7b")
            cells = {c: models.get_cell(str(row), c) for c in ("p95", "err", "queue")}
            for name, cell in cells.items():
                assert cell.style == app.palette.bad, name  # beyond target: the error colour
            ok = models.get_cell(str(models.keys.index("llama-70b")), "err")
            assert ok.style != app.palette.bad

    run(go())


def test_keys_drill_down_into_gpu_and_model_and_back():
    app = make_app(ScriptedCollector([frame_at(STEPS)]), history=prefilled_history())

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await started(pilot, app)
            gpus = table(app, "#gpus")
            assert app.focused is gpus
            await pilot.press("j", "j")
            assert gpus.cursor_row == 2
            await pilot.press("k")
            assert gpus.cursor_row == 1
            await pilot.press("down", "enter")
            assert isinstance(app.screen, GpuScreen) and app.screen.index == 2
            procs = table(app, "#procs")
            assert procs.keys == ["2:4200", "2:4300", "2:4600"]  # VRAM, largest first
            assert "MIG-2a" in screen_text(app)  # its MIG device
            await pilot.press("escape")
            assert isinstance(app.screen, OverviewScreen)
            await pilot.press("tab", "j", "enter")
            assert isinstance(app.screen, ModelScreen)
            assert app.screen.model_name == "qwen-7b"
            assert table(app, "#procs").keys == ["2:4200"]
            assert [k.split(":")[1] for k in table(app, "#model-alerts").keys] == [
                "ModelQueueBacklog",
                "HighLatency",
            ]
            await pilot.press("escape")
            assert isinstance(app.screen, OverviewScreen)
            await pilot.press("tab", "enter")  # the first alert is about qwen-7b
            assert isinstance(app.screen, ModelScreen)
            assert app.screen.model_name == "qwen-7b"
            await pilot.press("escape", "q")
        assert app.return_code == 0

    run(go())


def test_mouse_click_selects_then_opens_a_row():
    app = make_app(ScriptedCollector([frame_at(STEPS)]))

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await started(pilot, app)
            # Border (1) + header (1): the first model row is at y=2, the second at y=3.
            await pilot.click("#models", offset=(5, 3))
            assert table(app, "#models").cursor_row == 1
            assert isinstance(app.screen, OverviewScreen)
            await pilot.click("#models", offset=(5, 3))
            await wait_until(pilot, lambda: isinstance(app.screen, ModelScreen), "model screen")
            assert app.screen.model_name == "qwen-7b"

    run(go())


def test_filter_models_and_processes():
    app = make_app(ScriptedCollector([frame_at(STEPS)]))

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await started(pilot, app)
            models = table(app, "#models")
            await pilot.press("slash", "q", "w")
            assert models.keys == ["qwen-7b"]
            await pilot.press("enter")  # keeps the filter, back to the list
            assert models.keys == ["qwen-7b"] and app.focused is models
            assert "filter 'qw'" in str(models.border_title)
            await pilot.press("escape")  # clears it
            assert models.keys == ["llama-70b", "qwen-7b", "mistral-7b"]
            await pilot.press("slash", *"mistral", "escape")
            assert len(models.keys) == 3
            # Processes on a GPU drill-down: by command line, user or model.
            gpus = table(app, "#gpus")
            gpus.focus()
            await pilot.press("j", "j", "enter")
            procs = table(app, "#procs")
            await pilot.press("slash", *"llama-server", "enter")
            assert procs.keys == ["2:4300"]
            await pilot.press("escape")
            assert len(procs.keys) == 3 and isinstance(app.screen, GpuScreen)
            await pilot.press("escape")
            assert isinstance(app.screen, OverviewScreen)

    run(go())


def test_sort_keys_and_header_click():
    app = make_app(ScriptedCollector([frame_at(STEPS)]))

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await started(pilot, app)
            models = table(app, "#models")
            models.focus()
            assert models.sort_column == "vram" and models.sort_reverse
            await pilot.press("s")  # next column: p50, biggest first
            assert models.sort_column == "p50"
            assert models.keys == ["llama-70b", "qwen-7b", "mistral-7b"]  # unknown last
            await pilot.press("S")  # reverse
            assert models.keys == ["qwen-7b", "llama-70b", "mistral-7b"]
            assert "sort p50▲" in str(models.border_title)
            await pilot.press("s", "s")  # p99, biggest first
            assert models.sort_column == "p99" and models.keys[0] == "qwen-7b"
            await pilot.click("#models", offset=(3, 1))  # the Model header
            assert models.sort_column == "name"
            assert models.keys == ["llama-70b", "mistral-7b", "qwen-7b"]
            # The cursor follows its row when the order changes.
            models.move_cursor(row=2)
            await pilot.press("S")
            assert models.keys[models.cursor_row] == "qwen-7b"

    run(go())


def test_pause_freezes_the_screen_while_history_keeps_growing(monkeypatch):
    monkeypatch.setattr(live, "PAUSED_EVERY", 1.0)  # paused: every 1 s instead of 0.5 s
    collector = CountingCollector()
    app = make_app(collector, interval=0.5)

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await started(pilot, app)
            await pilot.press("p")
            assert app.feed.pace == 1.0
            assert "PAUSED" in status_text(app) and "reading every 1s" in status_text(app)
            frozen = app.shown
            added = app.history.frames_added
            await wait_until(pilot, lambda: app.history.frames_added >= added + 2, "2 frames")
            assert app.shown is frozen
            assert app.latest is not None and app.latest.time > frozen.time
            view = app.screen.view
            assert view is not None and view.frame is frozen  # widgets drew nothing newer
            await pilot.press("p")
            assert app.feed.pace == 0.5
            assert app.shown is app.latest and "PAUSED" not in status_text(app)

    run(go())


def test_a_paused_screen_slows_the_collection_and_resuming_reads_at_once(monkeypatch):
    monkeypatch.setattr(live, "PAUSED_EVERY", 3600.0)
    collector = CountingCollector()
    app = make_app(collector, interval=MIN_INTERVAL)

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await started(pilot, app, 2)  # collecting every 0.5 s
            await pilot.press("p")
            assert "reading every 3600s" in status_text(app)
            calls = collector.calls
            await pilot.pause(2.5)  # five intervals: at most the collection under way ends
            assert collector.calls <= calls + 1
            assert app.feed.status().paused_every == 3600.0
            await pilot.press("p")
            await wait_until(pilot, lambda: collector.calls > calls + 1, "a read on resuming")
            await wait_until(pilot, lambda: app.shown is app.latest, "the new frame shown")
            assert app.feed.status().paused_every is None

    run(go())


def test_refresh_now_collects_at_once_without_overlap():
    collector = CountingCollector()
    app = make_app(collector, interval=3600)

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await started(pilot, app)
            assert collector.calls == 1
            await pilot.press("r")
            await started(pilot, app, 2)
            assert collector.calls == 2
            assert app.shown is not None and app.shown.time == frame_at(STEPS + 2).time

    run(go())


def test_interval_keys_and_minimum():
    app = make_app(ScriptedCollector([frame_at(STEPS)]), settings=Settings(interval=2.0))

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await started(pilot, app)
            await pilot.press("plus")
            assert app.feed.interval == 3.0
            await pilot.press("minus", "minus")
            assert app.feed.interval == 1.0
            await pilot.press("minus", "minus", "minus")
            assert app.feed.interval == MIN_INTERVAL
            app.redraw_status()
            assert "every 0.5s" in status_text(app)

    run(go())
    fast = make_app(ScriptedCollector([frame_at(STEPS)]), settings=Settings(interval=0.1))
    assert fast.feed.interval == MIN_INTERVAL

    async def notified():
        async with fast.run_test(size=(100, 30)) as pilot:
            await started(pilot, fast)
            assert any("raised to 0.5 s" in n.message for n in fast._notifications)

    run(notified())


def test_snapshot_key_writes_text_and_markdown(tmp_path: Path):
    app = make_app(ScriptedCollector([frame_at(STEPS)]), tmp_path=tmp_path)

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await started(pilot, app)
            await pilot.press("x")
            await wait_until(pilot, lambda: len(list(tmp_path.glob("vramtop-*"))) == 2, "files")
            await wait_until(
                pilot,
                lambda: any("Snapshot written" in (n.title or "") for n in app._notifications),
            )
            note = next(n for n in app._notifications if n.title == "Snapshot written")
            await pilot.press("x")
            await wait_until(pilot, lambda: len(list(tmp_path.glob("vramtop-*"))) == 4, "again")
            return note

    note = run(go())
    stamp = datetime.fromtimestamp(frame_at(STEPS).time, UTC).strftime("%Y%m%dT%H%M%SZ")
    txt = tmp_path / f"vramtop-gpu-box-01-{stamp}.txt"
    md = tmp_path / f"vramtop-gpu-box-01-{stamp}.md"
    assert str(txt) in note.message and md.name in note.message
    assert txt.read_text().startswith(f"vramtop · gpu-box-01 · {frame_at(STEPS).iso_time}")
    assert "qwen-7b" in txt.read_text()
    assert md.read_text().startswith("## vramtop · gpu-box-01")
    assert (tmp_path / f"vramtop-gpu-box-01-{stamp}-2.md").exists()  # never overwritten


def test_snapshot_into_an_unwritable_place_says_why(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    app = make_app(ScriptedCollector([frame_at(STEPS)]), tmp_path=blocker / "sub")

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await started(pilot, app)
            await pilot.press("x")
            await wait_until(
                pilot, lambda: any(n.title == "Snapshot failed" for n in app._notifications)
            )
            note = next(n for n in app._notifications if n.title == "Snapshot failed")
            assert note.message.startswith("cannot write a snapshot in ")

    run(go())


def test_help_lists_every_binding():
    app = make_app(ScriptedCollector([frame_at(STEPS)]))

    async def go():
        async with app.run_test(size=(100, 40)) as pilot:
            await started(pilot, app)
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            text = app.screen.text.plain
            classes = [OverviewScreen, GpuScreen, ModelScreen, FrameTable, HelpScreen]
            groups = [("live view", LIVE_VIEW_KEYS)] + [(c.__name__, c.BINDINGS) for c in classes]
            for name, bindings in groups:
                for b in Binding.make_bindings(bindings):
                    assert app.get_key_display(b) in text, (name, b.key)
                    assert b.description in text, (name, b.description)
            for needle in ("Snapshot", "Filter", "Sort", "Pause", "Refresh", "Palette", "Window"):
                assert needle in text
            assert sum(len(items) for _, items in help_sections(app)) >= 25
            await pilot.press("escape")
            assert isinstance(app.screen, OverviewScreen)
            await pilot.press("question_mark", "question_mark")
            assert isinstance(app.screen, OverviewScreen)

    run(go())


def test_hostile_text_is_shown_literally():
    from samples import HOSTILE

    app = make_app(ScriptedCollector([frame_at(STEPS, hostile=True)]))
    literal = "[bold red]x[/] \\x1b[2J\\x1b]0;pwned\\x07"

    async def go():
        async with app.run_test(size=(160, 40)) as pilot:
            await started(pilot, app)
            models = table(app, "#models")
            cell = models.get_cell(str(models.keys.index(HOSTILE)), "name")
            assert cell.plain.startswith(literal) and not cell.spans
            text = screen_text(app)
            assert "[bold red]x[/]" in text and "\x1b" not in text
            assert "\\x1b[2J" in text  # host name, model name, alert
            table(app, "#gpus").focus()
            await pilot.press("enter")
            assert isinstance(app.screen, GpuScreen)
            procs = table(app, "#procs")
            assert procs.get_cell("0", "command").plain.startswith(literal)
            assert "[bold red]x[/]" in screen_text(app)
            await pilot.press("escape", "tab", "G", "enter")
            assert isinstance(app.screen, ModelScreen) and app.screen.model_name == HOSTILE
            assert "[bold red]x[/]" in screen_text(app)

    run(go())


def test_a_hanging_collector_keeps_keys_responsive_and_shows_stale():
    collector = HangingCollector()
    clock = Clock(frame_at(STEPS + 1).time)
    app = make_app(collector, clock=clock, interval=0.5)

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            try:
                await started(pilot, app)
                await wait_until(pilot, lambda: collector.calls == 2 and app.collecting, "hang")
                # Keys answer while collect() is blocked.
                await pilot.press("question_mark")
                assert isinstance(app.screen, HelpScreen)
                await pilot.press("escape", "enter")
                assert isinstance(app.screen, GpuScreen)
                await pilot.press("escape", "r", "r")
                assert isinstance(app.screen, OverviewScreen)
                assert collector.calls == 2  # refresh now never starts a second collection
                clock.now += 60
                app.redraw_status()
                assert "STALE: no new data for 1m" in status_text(app)
                await pilot.press("p")
                assert "PAUSED" in status_text(app)
                await pilot.press("p")
            finally:
                collector.release.set()
            # The queued refresh runs right after the hung one returns.
            await wait_until(pilot, lambda: collector.calls >= 3, "refresh after release")
            await started(pilot, app, 2)
            clock.now = app.latest.time + 0.5
            app.redraw_status()
            assert "STALE" not in status_text(app)

    run(go())


def test_no_data_yet_says_so():
    collector = HangingCollector()
    collector.calls = 1  # the first call already hangs
    clock = Clock(T0)
    app = make_app(collector, clock=clock)

    async def go():
        async with app.run_test(size=(80, 24)) as pilot:
            try:
                await wait_until(pilot, lambda: app.collecting, "collecting")
                app.redraw_status()
                assert "collecting" in status_text(app)
                clock.now += 30
                app.redraw_status()
                assert "no data yet: collecting for 30s" in status_text(app)
                await pilot.press("question_mark", "escape", "x")  # nothing to snapshot
                assert any("Nothing to snapshot" in n.message for n in app._notifications)
            finally:
                collector.release.set()

    run(go())


def test_a_collector_that_raises_is_reported_and_retried():
    class Broken:
        calls = 0

        def collect(self):
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("boom\nwith a second line")
            return frame_at(STEPS)

    broken = Broken()
    app = make_app(broken, interval=0.5)

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: app.problem is not None or app.frames_received)
            await started(pilot, app)
            assert broken.calls >= 2 and app.problem is None

    run(go())


def test_model_charts_use_backfill_at_once():
    collector = BackfillCollector([frame_at(STEPS)])
    app = make_app(collector)

    async def go():
        async with app.run_test(size=(160, 48)) as pilot:
            await started(pilot, app)
            table(app, "#models").focus()
            await pilot.press("enter")
            assert isinstance(app.screen, ModelScreen)
            screen = app.screen
            await wait_until(pilot, lambda: 300.0 in screen.backfill, "backfill")
            assert screen.backfill_note[300.0] == ""  # "loading history…" until it came
            await pilot.pause()
            # One local frame, yet the charts are full: 100 backfilled points over 5 minutes.
            latency = screen.query_one("#latency", Chart)
            p95 = latency.spec.lines[1].points
            assert len(p95) >= 60 and p95[0][0] < T0 + STEPS - 200
            assert screen.query_one("#rps", Chart).has_data
            queue = screen.query_one("#queue", Chart).spec.lines[0].points
            assert len(queue) == 1  # the backfilled NaNs are dropped; the local point stays
            await pilot.press("2")
            await wait_until(pilot, lambda: 3600.0 in screen.backfill, "1h backfill")
            assert collector.backfills == [("llama-70b", 300.0), ("llama-70b", 3600.0)]
            await pilot.press("1")  # cached: not asked again
            assert len(collector.backfills) == 2

    run(go())


def test_model_charts_from_local_history_with_targets():
    app = make_app(ScriptedCollector([frame_at(STEPS)]), history=prefilled_history())

    async def go():
        async with app.run_test(size=(160, 48)) as pilot:
            await started(pilot, app)
            table(app, "#models").focus()
            await pilot.press("j", "enter")
            screen = app.screen
            assert isinstance(screen, ModelScreen) and screen.model_name == "qwen-7b"
            latency = screen.query_one("#latency", Chart)
            assert latency.has_data and latency.spec.target == 0.1  # the p95 target line
            assert "┄100ms" in str(latency.border_title)
            assert screen.query_one("#errors", Chart).spec.target == 0.001
            assert screen.query_one("#queue", Chart).spec.target == 50.0
            for key in ("w", "w", "w", "w", "3"):
                await pilot.press(key)
            assert screen.picker.label == "6h"

    run(go())


def test_resize_keeps_every_panel_readable():
    app = make_app(ScriptedCollector([frame_at(STEPS)]), history=prefilled_history())

    async def go():
        async with app.run_test(size=(200, 60)) as pilot:
            await started(pilot, app)
            for size in ((80, 24), (200, 60), (80, 24)):
                await pilot.resize_terminal(*size)
                await pilot.pause()
                for selector in ("#gpus", "#models", "#alerts", "#host"):
                    region = app.screen.query_one(selector).region
                    assert region.height >= 3 and region.width >= 30, (size, selector)
                assert len(screen_text(app).splitlines()) == size[1]
            for keys in (("enter",), ("escape", "tab", "enter")):
                await pilot.press(*keys)
                await pilot.resize_terminal(200, 60)
                await pilot.pause()
                await pilot.resize_terminal(80, 24)
                await pilot.pause()
                for chart in app.screen.query(Chart):  # the shown ones (serving: LLMs only)
                    assert chart.region.height >= 5 or not chart.display

    run(go())


def test_themes_switch_and_no_color(tmp_path: Path):
    app = make_app(ScriptedCollector([frame_at(STEPS)]), tmp_path=tmp_path)

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await started(pilot, app)
            assert app.theme == "vramtop-dark"
            names = set(app.available_themes)
            assert {"vramtop-dark", "vramtop-light", "vramtop-high-contrast"} <= names
            before = app.palette
            app.theme = "vramtop-light"
            await wait_until(pilot, lambda: app.palette != before, "palette follows the theme")
            cell = table(app, "#models").get_cell("1", "p95")
            assert cell.style == app.palette.bad  # cells were redrawn in the new colours

    run(go())
    mono = make_app(
        ScriptedCollector([frame_at(STEPS)]),
        tmp_path=tmp_path,
        settings=Settings(interval=3600, no_color=True),
    )
    assert mono.theme == "vramtop-mono" and mono.no_color
    env = {"XDG_CONFIG_HOME": str(tmp_path), "NO_COLOR": "1"}
    assert make_app(ScriptedCollector([frame_at(0)]), env=env).theme == "vramtop-mono"


def test_command_palette_offers_vramtop_commands():
    app = make_app(ScriptedCollector([frame_at(STEPS)]))

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await started(pilot, app)
            titles = [c.title for c in app.get_system_commands(app.screen)]
            for needle in ("Pause / resume", "Snapshot", "Theme: vramtop-light"):
                assert needle in titles
            await pilot.press("ctrl+p")
            await wait_until(pilot, lambda: app.screen.__class__.__name__ == "CommandPalette")
            await pilot.press(*"pause", "enter")
            await wait_until(pilot, lambda: app.paused, "paused from the palette")

    run(go())


def test_a_host_without_gpus_says_why():
    from samples import empty_frame

    app = make_app(ScriptedCollector([empty_frame()]))

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await started(pilot, app)
            assert table(app, "#gpus").keys == [] and table(app, "#models").keys == []
            text = screen_text(app)
            assert "no NVIDIA driver on this host (libnvidia-ml.so.1 not found)" in text
            assert "no models identified yet" in text
            await pilot.press("enter", "tab", "enter")  # nothing to open: nothing happens
            assert isinstance(app.screen, OverviewScreen)

    run(go())


def test_header_names_the_prometheus_period_and_r_reads_prometheus_now():
    from vramtop.collector import Collector
    from vramtop.model import AlertReading, HostReading
    from vramtop.sources.alerts import AlertsReading

    class Host:
        name, hostname = "host", "h"

        def poll(self) -> HostReading:
            return HostReading("h")

    class Prometheus:
        name, calls = "prometheus", 0

        def poll(self) -> AlertsReading:
            self.calls += 1
            return AlertsReading((AlertReading("A", "warning", "firing"),))

    prom = Prometheus()
    # Prometheus every 10 minutes: within the test, only "r" can make it read again
    collector = Collector(Host(), remote=[prom], remote_every=600.0)
    app = make_app(collector, interval=1.0)

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await started(pilot, app)
            app.redraw_status()
            assert "every 1s, Prometheus 600s" in status_text(app)
            calls = prom.calls
            await pilot.press("r")
            await wait_until(pilot, lambda: prom.calls > calls)

    run(go())
    collector.close()
