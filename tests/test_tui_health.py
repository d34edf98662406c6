"""GPU health in the live view, through the real pynvml against the fake libnvidia-ml: the
Health column, the GPU drill-down's Health section and events, throttle bands over its
utilisation chart, events marked under a model's latency chart, per-process use columns.
Below them, the pure pieces (chart bands and marks, the throttle history) with exact values."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.style import Style
from test_tui_support import (
    STEPS,
    T0,
    ScriptedCollector,
    frame_at,
    make_app,
    run,
    screen_text,
    wait_until,
)

from vramtop.collector import Collector
from vramtop.config import Targets
from vramtop.demo.scenario import Event, Gpu, Process, Scenario
from vramtop.export.fmt import time_of_day
from vramtop.history import History
from vramtop.model import Frame, GpuHealth, GpuReading, HostReading
from vramtop.sources.host import HostSource
from vramtop.sources.nvml import NvmlSource
from vramtop.tui.app import VramtopApp
from vramtop.tui.plot import Band, ChartSpec, Line, Mark, render_chart
from vramtop.tui.screens.gpu import GpuScreen
from vramtop.tui.screens.model import ModelScreen
from vramtop.tui.view import View
from vramtop.tui.widgets.chart import Chart
from vramtop.tui.widgets.frame_table import FrameTable
from vramtop.tui.widgets.gpu_health import GpuHealthPanel, health_text

GIB = 2**30


@contextmanager
def live_app(interval: float = 3600.0, **kw: Any) -> Iterator[VramtopApp]:
    """The live view over a real Collector: host and NVML sources (the fake driver)."""
    nvml = NvmlSource()
    try:
        yield make_app(Collector(host=HostSource(), nvml=nvml), interval=interval, **kw)
    finally:
        nvml.close()


def table(app: VramtopApp, selector: str) -> FrameTable:
    return app.screen.query_one(selector, FrameTable)


async def first_frame(pilot: Any, app: VramtopApp) -> None:
    await wait_until(pilot, lambda: app.frames_received >= 1, "the first frame")
    await pilot.pause()


def test_health_column_names_the_worst_finding_in_its_colour(scenario):
    scenario(
        Scenario(
            gpus=(
                Gpu(uuid="GPU-fine"),
                Gpu(uuid="GPU-capped", clocks_event_reasons=0x4),  # sw_power_cap
                Gpu(uuid="GPU-hot", clocks_event_reasons=0x4 | 0x40),  # and hw_thermal
                Gpu(uuid="GPU-narrow", pcie_width=8, pcie_width_max=16),
            )
        )
    )
    with live_app() as app:

        async def go() -> None:
            async with app.run_test(size=(80, 24)) as pilot:
                await first_frame(pilot, app)
                gpus = table(app, "#gpus")
                cells = [gpus.get_cell(row, "health") for row in range(4)]
                assert [c.plain for c in cells] == ["ok", "pwr-cap", "thermal", "PCIe x8"]
                p = app.palette
                assert [c.style for c in cells] == [p.good, p.primary, p.warn, p.warn]
                # It fits 80 columns: the whole word is on screen.
                text = screen_text(app)
                assert "Health" in text and "pwr-cap" in text and "PCIe x8" in text
                gpus.sort_by("health")  # the worst first
                assert gpus.keys == ["2", "3", "1", "0"]

        run(go())


def test_an_xid_shows_in_the_gpu_events_and_on_the_model_latency_axis(scenario, spawn):
    child = spawn("serve.py", "--model", "xid-llama", "--port", "9000")
    scenario(
        Scenario(
            gpus=(
                Gpu(
                    uuid="GPU-xid",
                    clocks_event_reasons=0x20,  # sw_thermal: a band over utilisation
                    processes=(Process(child.pid, 20 * GIB),),
                ),
            ),
            events=(Event(at_ms=50, gpu=0, type="xid", data=79),),
        )
    )
    with live_app(interval=0.5) as app:

        async def go() -> None:
            async with app.run_test(size=(160, 48)) as pilot:
                await wait_until(pilot, lambda: app.frames_received >= 1, "the first frame")

                def xid() -> bool:
                    frame = app.latest
                    return bool(frame and any(e.code == 79 for e in frame.events))

                await wait_until(pilot, xid, "the XID from the event thread")
                await pilot.pause()
                (event,) = app.latest.events
                assert (event.gpu_uuid, event.kind, event.code) == ("GPU-xid", "xid", 79)
                assert table(app, "#gpus").get_cell(0, "health").plain == "XID 79"

                await pilot.press("enter")  # the GPU table has the focus
                assert isinstance(app.screen, GpuScreen)
                await pilot.pause()
                section = app.screen.query_one(GpuHealthPanel).render()
                lines = {ln.plain.split(" ", 1)[0]: ln for ln in section.split("\n")}
                assert lines["Events"].plain == (
                    f"Events {time_of_day(event.time)} XID 79 GPU has fallen off the bus"
                )
                critical = app.palette.severity("critical")
                assert [s.style for s in lines["Events"].spans][-2:] == [critical, critical]
                assert lines["Health"].plain.startswith("Health XID 79 · thermal  Clocks ")
                assert "throttled: sw_thermal · P-state P0 · ECC on" in lines["Health"].plain
                util = app.screen.query_one("#util", Chart).spec
                assert util is not None
                assert [b.label for b in util.bands] == ["thermal"]
                assert [(m.time, m.label) for m in util.marks] == [(event.time, "XID 79")]

                await pilot.press("escape", "tab", "enter")  # the model on that GPU
                assert isinstance(app.screen, ModelScreen)
                assert app.screen.model_name == "xid-llama"
                await pilot.pause()
                latency = app.screen.query_one("#latency", Chart)
                assert latency.spec is not None
                assert latency.spec.marks == (Mark(event.time, "XID 79", critical),)
                rows = latency.render().plain.split("\n")
                # No serving metrics here, yet the event sits on the chart's time axis.
                assert any("▲XID 79" in r or "XID 79▲" in r for r in rows), rows
                assert "no serving metrics" in latency.render().plain

        run(go())


def test_process_table_sorts_by_sm_percent(scenario):
    procs = (
        Process(4101, 10 * GIB, sm_util=10, mem_util=1),
        Process(4102, 5 * GIB, sm_util=70, mem_util=2),
        Process(4103, 1 * GIB, sm_util=40, mem_util=3),
    )
    scenario(Scenario(gpus=(Gpu(processes=procs),)))
    with live_app() as app:

        async def go() -> None:
            async with app.run_test(size=(160, 48)) as pilot:
                await first_frame(pilot, app)
                await pilot.press("enter")
                assert isinstance(app.screen, GpuScreen)
                await pilot.pause()
                procs = table(app, "#procs")
                assert procs.keys == ["0:4101", "0:4102", "0:4103"]  # VRAM, largest first
                await pilot.press("s")  # the next column: SM %, busiest first
                assert procs.sort_column == "sm" and procs.sort_reverse
                assert procs.keys == ["0:4102", "0:4103", "0:4101"]
                assert [procs.get_cell(r, "sm").plain for r in range(3)] == ["70%", "40%", "10%"]
                assert [procs.get_cell(r, "mem").plain for r in range(3)] == ["2%", "3%", "1%"]
                await pilot.press("S")
                assert procs.keys == ["0:4101", "0:4103", "0:4102"]
                # No such processes on this machine: CPU, RSS and age are unknown, a dash.
                assert {
                    procs.get_cell(r, k).plain for r in range(3) for k in ("cpu", "rss", "age")
                } == {"–"}
                assert "sort SM%▲" in str(procs.border_title)

        run(go())


# -- the pure pieces ---------------------------------------------------------------------------

AXIS = Style()
HOT, XID = Style(color="red"), Style(color="yellow")


def _pct(v: float) -> str:
    return f"{v:.0f}%"


def test_marker_row_shows_bands_and_marks_on_the_time_axis():
    # 100 s over 40 plot columns (80 dots): a point every 10 s; thermal from 20 s to 60 s.
    util = [(float(t), 50.0) for t in range(0, 101, 10)]
    band = [(float(t), 1.0 if 20 <= t < 60 else 0.0) for t in range(0, 101, 10)]
    spec = ChartSpec(
        (Line("util", util, AXIS),),
        0.0,
        100.0,
        _pct,
        AXIS,
        y_fixed=100.0,
        bands=(Band("thermal", band, HOT),),
        marks=(Mark(80.0, "XID 79", XID),),
    )
    rows = render_chart(spec, 45, 6)
    assert len(rows) == 6
    marker = rows[-2]
    # Columns: round(t / 100 * 79) // 2; the band from 20 s (column 8) until the point at
    # 60 s (column 23), the mark at 80 s (column 31).
    assert marker.plain == "    │        thermal━━━━━━━━        ▲XID 79  "
    assert rows[-1].plain.strip().endswith("now")  # the time axis stays under it
    start = len("    │")
    assert {s.style for s in marker.spans if s.start >= start + 8 and s.end <= start + 23} == {HOT}
    assert [s.style for s in marker.spans if s.style == XID] == [XID] * len("▲XID 79")
    # At the right edge the mark's label goes before it.
    edge = ChartSpec(
        (Line("u", util, AXIS),), 0.0, 100.0, _pct, AXIS, marks=(Mark(100.0, "XID 13", XID),)
    )
    assert render_chart(edge, 45, 6)[-2].plain.endswith("XID 13▲")


def test_marks_on_an_empty_chart_and_on_the_axis_when_short():
    spec = ChartSpec((), 0.0, 100.0, _pct, AXIS, marks=(Mark(50.0, "XID 79", XID),))
    rows = render_chart(spec, 40, 6)
    assert "▲XID 79" in rows[-2].plain and rows[-1].plain.strip().endswith("now")
    # Three lines: two plot rows and the axis, the mark written over the axis.
    short = render_chart(
        ChartSpec(
            (Line("u", [(0.0, 1.0), (100.0, 2.0)], AXIS),),
            0.0,
            100.0,
            _pct,
            AXIS,
            marks=(Mark(50.0, "XID 79", XID),),
        ),
        40,
        3,
    )
    assert (
        len(short) == 3
        and "▲XID 79" in short[-1].plain
        and short[-1].plain.rstrip().endswith("now")
    )
    # Nothing to mark, nothing to plot: blank lines (the widget says why).
    empty = render_chart(ChartSpec((), 0.0, 100.0, _pct, AXIS), 40, 4)
    assert [r.plain for r in empty] == [" " * 40] * 4


def _gpu_frame(t: float, reasons: tuple[str, ...] | None) -> Frame:
    health = None if reasons is None else GpuHealth(throttle_reasons=reasons)
    gpu = GpuReading(
        0, "GPU-a", "H100", memory_used_bytes=GIB, utilization_percent=50.0, health=health
    )
    return Frame(t, HostReading("box"), gpus=(gpu,))


def test_history_keeps_a_throttle_band_only_once_seen():
    h = History()
    for k in range(5):
        h.add(_gpu_frame(T0 + k, ()))
    assert h.throttle(0, 300, T0 + 4) == {}
    assert len(h) == 2  # memory and utilisation only: a GPU that never throttles costs nothing
    h.add(_gpu_frame(T0 + 5, ("sw_power_cap", "hw_thermal")))
    h.add(_gpu_frame(T0 + 6, ("sw_thermal",)))
    h.add(_gpu_frame(T0 + 7, None))  # not read: no point, not a zero
    h.add(_gpu_frame(T0 + 8, ()))
    assert h.throttle(0, 300, T0 + 8) == {
        "thermal": [(T0 + 5, 1.0), (T0 + 6, 1.0), (T0 + 8, 0.0)],
        "pwr-cap": [(T0 + 5, 1.0), (T0 + 6, 0.0), (T0 + 8, 0.0)],
    }


def test_mono_theme_tells_severities_apart_without_colour(tmp_path):
    app = make_app(ScriptedCollector([frame_at(STEPS)]), tmp_path=tmp_path, theme="vramtop-mono")

    async def go() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await first_frame(pilot, app)
            gpus = table(app, "#gpus")
            cells = {gpus.get_cell(r, "health").plain: gpus.get_cell(r, "health") for r in range(4)}
            assert set(cells) == {"ok", "pwr-cap", "XID 13", "lost"}
            lost, xid, cap, ok = (cells[w].style for w in ("lost", "XID 13", "pwr-cap", "ok"))
            assert lost.bold and lost.reverse  # critical: reverse video
            assert xid.bold and not xid.reverse  # warning: bold
            assert not cap.bold and not ok.bold

    run(go())


def test_health_section_of_a_lost_gpu_and_of_one_never_read(tmp_path):
    app = make_app(ScriptedCollector([frame_at(STEPS)]), tmp_path=tmp_path)

    async def go() -> None:
        async with app.run_test(size=(160, 48)) as pilot:
            await first_frame(pilot, app)
            await pilot.press("G", "enter")  # GPU 3: lost at step 100
            assert isinstance(app.screen, GpuScreen) and app.screen.index == 3
            await pilot.pause()
            section = app.screen.query_one(GpuHealthPanel).render().plain
            assert section == "Health lost\nEvents 11:08:20Z lost GPU fell off the bus"

    run(go())
    gpu = GpuReading(0, "GPU-remote", "H100", host="10.0.0.9")
    frame = Frame(T0, HostReading("box"), gpus=(gpu,))
    view = View(frame, History(), Targets(), app.palette, T0)
    assert health_text(view, gpu).plain == (
        "Health –  not read (no NVML, or no health metrics from its exporter)\n"
        "Events none seen since vramtop started"
    )
