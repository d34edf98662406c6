"""GPU drill-down: identity and MIG devices, health and its events, memory and use over a
window (throttling as bands over use, events as marks), its processes."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Footer

from vramtop.history import MAX_SERIES
from vramtop.model import Frame, GpuReading
from vramtop.tui.cells import GIB, gib_axis
from vramtop.tui.palette import Palette
from vramtop.tui.plot import Band, ChartSpec, Line, Mark
from vramtop.tui.screens.base import set_title, table_title
from vramtop.tui.screens.drill import DrillScreen
from vramtop.tui.view import View
from vramtop.tui.widgets.chart import Chart
from vramtop.tui.widgets.filter_bar import FilterBar
from vramtop.tui.widgets.gpu_health import GpuHealthPanel, event_word, events_of
from vramtop.tui.widgets.gpu_info import GpuInfo
from vramtop.tui.widgets.gpu_table import find_gpu
from vramtop.tui.widgets.process_table import ProcessTable
from vramtop.tui.widgets.status_bar import StatusBar
from vramtop.tui.widgets.window_picker import WindowPicker

# How each throttle band (vramtop.history.THROTTLE_BANDS) is coloured: hardware-enforced
# slowdowns as critical, thermal as a warning, the power cap (normal under load) as info.
BAND_SEVERITY = {"hw-slow": "critical", "pwr-brake": "critical", "thermal": "warning"}


def _pct(v: float) -> str:
    return f"{v:.0f}%"


def throttle_bands(p: Palette, series: dict[str, list]) -> tuple[Band, ...]:
    out = []
    for band, points in series.items():
        if any(v > 0 for _, v in points):
            severity = BAND_SEVERITY.get(band, "info")
            out.append(Band(band, points, p.severity(severity), p.tint(severity)))
    return tuple(out)


def event_marks(p: Palette, frame: Frame, gpus: list[GpuReading], since: float) -> tuple[Mark, ...]:
    """The health events of these GPUs since ``since``, as chart marks."""
    events = {e for g in gpus for e in events_of(g, frame.events) if e.time >= since}
    return tuple(
        Mark(e.time, event_word(e), p.severity(e.severity))
        for e in sorted(events, key=lambda e: e.time)
    )


class GpuScreen(DrillScreen):
    def __init__(self, index: int, host: str | None = None) -> None:
        """``host``: the fleet host the GPU is on (indices repeat across hosts); the screen
        then draws that host's share of every Frame."""
        super().__init__()
        self.index = index
        self.host = host

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield GpuInfo(self.index, host=self.host, id="info")
        yield GpuHealthPanel(self.index, id="health")
        yield WindowPicker()
        with Horizontal(id="gpu-charts"):
            yield Chart("VRAM used", id="mem")
            yield Chart("Utilisation", id="util")
        yield ProcessTable(gpu=self.index, hide=("gpu",), id="procs")
        yield FilterBar("processes", id="filter")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#procs").focus()

    def draw(self, view: View) -> None:
        p, t = view.palette, view.targets
        frame = view.frame
        self.query_one(GpuInfo).show(view)
        self.query_one(GpuHealthPanel).show(view)
        self.picker.show(p)
        gpu = find_gpu(frame.gpus, self.index)
        window = self.picker.seconds
        now = frame.time
        t0 = now - window
        host = gpu.host if gpu else self.host
        kept = view.history.has_gpu(self.index, host) or host is None
        note = "" if kept else f"no history kept: at most {MAX_SERIES} series, fleet GPUs last"
        used = [
            (x, v / GIB)
            for x, v in view.history.gpu(self.index, "memory_used_bytes", window, now, host)
        ]
        total = gpu.memory_total_bytes / GIB if gpu and gpu.memory_total_bytes else None
        mem = self.query_one("#mem", Chart)
        util = view.history.gpu(self.index, "utilization_percent", window, now, host)
        for chart in self.query(Chart):
            chart.empty_note = note or "no data yet"
        mem.plot(
            ChartSpec(
                (Line("used", used, p.series[0]),),
                t0,
                now,
                gib_axis,
                p.dim,
                total * t.vram_critical_ratio if total else None,
                p.warn,
                y_fixed=total,
            )
        )
        bands = throttle_bands(p, view.history.throttle(self.index, window, now, host))
        marks = event_marks(p, frame, [gpu] if gpu else [], t0)
        self.query_one("#util", Chart).plot(
            ChartSpec(
                (Line("util", util, p.series[1]),),
                t0,
                now,
                _pct,
                p.dim,
                y_fixed=100.0,
                bands=bands,
                marks=marks,
            )
        )
        procs = self.query_one("#procs", ProcessTable)
        procs.show(view)
        set_title(procs, table_title(f"GPU {self.index} processes", procs))
