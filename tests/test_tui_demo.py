"""The demo in the live view: its model drill-downs open with full charts, answered by the
demo's own timeline as a Prometheus backfill would be (real collector, simulated host)."""

from __future__ import annotations

from test_tui_support import Clock, make_app, run, wait_until

from vramtop.config import Settings
from vramtop.tui.screens.model import ModelScreen
from vramtop.tui.widgets.chart import Chart
from vramtop.tui.widgets.frame_table import FrameTable
from vramtop.wiring import build_collector

T0 = 1_795_000_200.0 - (1_795_000_200.0 % 600)  # the start of a demo 10-minute cycle
NOW = T0 + 390  # the KV-cache squeeze at its height


def test_demo_drill_down_opens_full():
    collector = build_collector(Settings(), {}, demo=True, clock=lambda: NOW)
    app = make_app(collector, clock=Clock(NOW))

    async def go():
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_until(pilot, lambda: app.frames_received >= 1, "a frame")
            await pilot.pause()
            models = app.screen.query_one("#models", FrameTable)
            models.focus()
            await pilot.press("enter")  # the first row: the most VRAM, llama-3.1-70b
            screen = app.screen
            assert isinstance(screen, ModelScreen) and screen.model_name == "llama-3.1-70b"
            await wait_until(pilot, lambda: 300.0 in screen.backfill, "backfill")
            assert screen.backfill_note[300.0] == ""
            await pilot.pause()
            # One local frame, yet five minutes of points, from the first second of the window.
            for chart, line in (("#latency", 1), ("#rps", 0), ("#queue", 0), ("#vram", 0)):
                points = screen.query_one(chart, Chart).spec.lines[line].points
                assert len(points) >= 240 and points[0][0] == NOW - 300, chart

    run(go())
