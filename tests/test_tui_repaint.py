"""A frame that changed nothing visible costs no repaint; a figure that changed within its
line repaints that line, without a layout pass (issue 14)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from test_tui_support import (
    STEPS,
    T0,
    Clock,
    ScriptedCollector,
    frame_at,
    make_app,
    run,
    wait_until,
)
from textual.geometry import Region

from vramtop.tui.messages import FrameCollected
from vramtop.tui.widgets.frame_table import FrameTable
from vramtop.tui.widgets.host_panel import HostPanel
from vramtop.tui.widgets.status_bar import StatusBar


def spy(widget: Any, name: str, calls: list[tuple[str, tuple, dict]]) -> None:
    """Records every call of ``widget.name`` (and still makes it)."""
    real = getattr(widget, name)

    def wrapped(*args: Any, **kw: Any) -> Any:
        calls.append((f"{widget.id}.{name}", args, kw))
        return real(*args, **kw)

    setattr(widget, name, wrapped)


def test_an_unchanged_frame_repaints_nothing_and_a_changed_figure_one_line():
    frame = frame_at(STEPS)
    app = make_app(ScriptedCollector([frame]))

    async def go() -> None:
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_until(pilot, lambda: app.frames_received >= 1, "the first frame")
            await pilot.pause()
            screen = app.screen
            tables = {t.id: t for t in screen.query(FrameTable)}
            assert set(tables) == {"gpus", "models", "procs", "alerts"}
            assert tables["procs"].row_count == sum(len(g.processes) for g in frame.gpus)
            host = screen.query_one(HostPanel)
            # The same frame until the GPUs' VRAM sparklines are full: then they stand still.
            posted = 1
            for _ in range(tables["gpus"].width_of("spark")):
                app.post_message(FrameCollected(frame))  # one at a time: a newer replaces it
                posted += 1
                await wait_until(pilot, lambda n=posted: app.frames_received >= n, "a repeat")
            await pilot.pause()
            before = {k: list(t._shown) for k, t in tables.items()}
            calls: list[tuple[str, tuple, dict]] = []
            for t in tables.values():
                spy(t, "refresh", calls)
                spy(t, "refresh_line", calls)
            spy(host, "refresh", calls)

            app.post_message(FrameCollected(frame))  # the same figures again
            await wait_until(pilot, lambda: app.frames_received > posted, "one more frame")
            await pilot.pause()
            assert calls == []
            # The process and model rows were not even built again.
            for key in ("procs", "models"):
                assert all(a is b for a, b in zip(before[key], tables[key]._shown, strict=True))

            # One process's CPU % and the host's CPU % change; nothing else does.
            gpu = frame.gpus[0]
            proc = gpu.processes[0]
            busier = replace(proc, cpu_percent=(proc.cpu_percent or 0.0) + 1.0)
            gpus = (replace(gpu, processes=(busier, *gpu.processes[1:])), *frame.gpus[1:])
            cpu = float(int(frame.host.cpu_percent or 0.0) + 10)
            changed = replace(frame, gpus=gpus, host=replace(frame.host, cpu_percent=cpu))
            app.post_message(FrameCollected(changed))
            await wait_until(pilot, lambda: app.frames_received > posted + 1, "a changed frame")
            await pilot.pause()
            row = tables["procs"].keys.index(f"{proc.gpu_index}:{proc.pid}")
            line = Region(0, row + 1, tables["procs"].size.width, 1)
            assert sorted((name, args) for name, args, _ in calls) == [
                ("host.refresh", ()),
                ("procs.refresh", (line,)),  # what refresh_line asks for
                ("procs.refresh_line", (row + 1,)),
            ]
            assert [kw for name, _, kw in calls if name == "host.refresh"] == [{"layout": False}]
            assert host.render().plain.startswith(f"CPU {int(cpu)}% of 64  ")

    run(go())


def test_a_paused_screen_repaints_nothing_while_frames_keep_coming():
    """Paused: new figures, the clock moving on and the status tick leave every widget alone;
    the frames still go into the history."""
    clock = Clock(T0 + STEPS + 1)
    frames = [frame_at(STEPS + i) for i in range(6)]
    fresh = frame_at(STEPS + 10)  # what the collector reads when the screen resumes
    app = make_app(ScriptedCollector([frames[0], fresh]), clock=clock)

    async def go() -> None:
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_until(pilot, lambda: app.frames_received >= 1, "the first frame")
            await pilot.press("p")
            await pilot.pause()
            screen = app.screen
            assert "PAUSED" in screen.query_one(StatusBar).text
            calls: list[tuple[str, tuple, dict]] = []
            for table in screen.query(FrameTable):
                spy(table, "refresh", calls)
                spy(table, "refresh_line", calls)
            spy(screen.query_one(HostPanel), "refresh", calls)
            spy(screen.query_one(StatusBar), "refresh", calls)
            added = app.history.frames_added
            for n, frame in enumerate(frames[1:], start=1):
                clock.now = frame.time + 1  # what once aged: "newer data 5s"
                app.post_message(FrameCollected(frame))
                await wait_until(pilot, lambda n=n: app.frames_received > n, "a paused frame")
                app.redraw_status()  # as the status tick would
                await pilot.pause()
            assert app.history.frames_added == added + 5
            assert app.latest is frames[-1] and app.shown is frames[0]
            assert calls == []

            await pilot.press("p")  # resumed: the newest frame at once, then a new one read
            assert app.shown in (frames[-1], fresh)
            await wait_until(pilot, lambda: app.shown is fresh, "a frame read on resuming")
            await pilot.pause()
            assert any(name.startswith("host.") for name, _, _ in calls)

    run(go())
