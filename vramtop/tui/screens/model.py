"""Model drill-down: latency quantiles, rates, queue and VRAM over a window; its processes
and alerts. Charts come from local history, filled at once by the collector's backfill. The
health events of the GPUs serving it are marked under the latency chart, on its time axis."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Horizontal
from textual.widgets import Footer

from vramtop import clean
from vramtop.history import Point, combine_all
from vramtop.serving import HISTORY_KEYS
from vramtop.tui import cells
from vramtop.tui.messages import BackfillReady, BackfillWanted, OpenHost
from vramtop.tui.plot import ChartSpec, Line
from vramtop.tui.screens.base import set_title, table_title
from vramtop.tui.screens.drill import DrillScreen
from vramtop.tui.screens.gpu import event_marks
from vramtop.tui.view import View
from vramtop.tui.widgets.alert_table import AlertTable, for_model
from vramtop.tui.widgets.chart import Chart
from vramtop.tui.widgets.filter_bar import FilterBar
from vramtop.tui.widgets.frame_table import FrameTable
from vramtop.tui.widgets.model_info import ModelInfo
from vramtop.tui.widgets.process_table import ProcessTable
from vramtop.tui.widgets.replica_table import ReplicaTable
from vramtop.tui.widgets.status_bar import StatusBar
from vramtop.tui.widgets.window_picker import WindowPicker

LATENCY = ("latency_p50_seconds", "latency_p95_seconds", "latency_p99_seconds")
SERIES = (
    *LATENCY,
    "requests_per_second",
    "error_ratio",
    "queue_length",
    "vram_bytes",
    *HISTORY_KEYS,
)
# The serving charts and the figures behind each: shown for a model that has any of them.
SERVING_CHARTS = {
    "kv": ("kv_cache_usage_ratio",),
    "ttft": ("ttft_p95_seconds", "inter_token_p95_seconds"),
    "tokens": ("prompt_tokens_per_second", "generation_tokens_per_second"),
}


def _rate(v: float) -> str:
    return cells.rate(v).removesuffix("/s")


class ModelScreen(DrillScreen):
    def __init__(self, name: str, backfills: bool = False, host: str | None = None) -> None:
        """``backfills``: the feed keeps history to fill the charts with at once. ``host``: the
        model as that fleet host's replica (the charts stay fleet-wide)."""
        super().__init__()
        self.model_name = name
        self.backfills = backfills
        self.host = host
        self._replicas_focused = False
        self.backfill: dict[float, dict[str, list[Point]]] = {}
        self.backfill_note: dict[float, str] = {}

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield ModelInfo(self.model_name, id="info")
        yield WindowPicker()
        with Grid(id="charts"):
            yield Chart("Latency", id="latency")
            yield Chart("Requests/s", id="rps")
            yield Chart("Errors", id="errors")
            yield Chart("Queue", id="queue")
            yield Chart("VRAM", id="vram")
            yield Chart("KV cache", id="kv", classes="serving")
            yield Chart("TTFT/ITL p95", id="ttft", classes="serving")
            yield Chart("Tokens/s", id="tokens", classes="serving")
        with Horizontal(id="lower"):
            yield ReplicaTable(self.model_name, id="replicas")
            yield ProcessTable(pids=(), hide=("model",), id="procs")
            yield AlertTable(only=for_model(self.model_name), id="model-alerts")
        yield FilterBar("processes", id="filter")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#procs").focus()
        self._backfill(self.picker.seconds)

    def window_changed(self) -> None:
        if self.picker.seconds not in self.backfill:
            self._backfill(self.picker.seconds)
        super().window_changed()

    def _backfill(self, window: float) -> None:
        if self.backfills:
            self.backfill_note[window] = "loading history…"
            self.post_message(BackfillWanted(self.model_name, window, self))

    def on_backfill_ready(self, message: BackfillReady) -> None:
        if message.model != self.model_name:
            return
        if message.error:
            self.backfill_note[message.window] = f"backfill failed: {message.error}"
        else:
            self.backfill[message.window] = message.series
            self.backfill_note[message.window] = ""
        self.refresh_titles()

    def draw(self, view: View) -> None:
        p, t = view.palette, view.targets
        frame = view.frame
        self.query_one(ModelInfo).show(view)
        model = next((m for m in frame.models if m.name == self.model_name), None)
        window = self.picker.seconds
        note = self.backfill_note.get(window, "")
        if self.host is not None:
            note = "  ".join(x for x in ("charts fleet-wide", note) if x)
        self.picker.show(p, note)
        now = frame.time
        local = view.history.model_window(self.model_name, window, now, SERIES)
        data = combine_all(self.backfill.get(window), local)
        axis = p.dim
        lat = [
            Line(name, data[key], style)
            for name, key, style in zip(("p50", "p95", "p99"), LATENCY, p.series, strict=True)
        ]
        t0 = now - window
        charts = {
            "latency": (lat, cells.seconds, t.p95_for(self.model_name)),
            "rps": ([Line("req/s", data["requests_per_second"], p.series[0])], _rate, None),
            "errors": (
                [Line("errors", data["error_ratio"], p.series[0])],
                cells.percent_ratio,
                t.error_ratio,
            ),
            "queue": (
                [Line("queue", data["queue_length"], p.series[0])],
                cells.count,
                t.queue_length_warning,
            ),
            "vram": (
                [Line("VRAM", _in_gib(data["vram_bytes"]), p.series[0])],
                cells.gib_axis,
                None,
            ),
        }
        # The charts are the model's across the fleet, also on a host's replica.
        whole = next((m for m in view.fleet_frame.models if m.name == self.model_name), None)
        serving = [g for g in frame.gpus if model and g.index in model.gpus and g.host is None]
        marks = event_marks(p, frame, serving, t0)
        llm = any(data[k] for k in HISTORY_KEYS) or (
            whole is not None and any(k in whole.extras for k in HISTORY_KEYS)
        )
        if llm != self.has_class("serving"):
            self.set_class(llm, "serving")
        if llm:
            charts.update(
                {
                    "kv": (
                        [Line("KV", data["kv_cache_usage_ratio"], p.series[0])],
                        cells.percent_ratio,
                        t.kv_cache_warning_ratio,
                    ),
                    "ttft": (
                        [
                            Line("TTFT", data["ttft_p95_seconds"], p.series[0]),
                            Line("ITL", data["inter_token_p95_seconds"], p.series[1]),
                        ],
                        cells.seconds,
                        t.ttft_p95_seconds,
                    ),
                    "tokens": (
                        [
                            Line("prompt", data["prompt_tokens_per_second"], p.series[0]),
                            Line("gen", data["generation_tokens_per_second"], p.series[1]),
                        ],
                        _rate,
                        None,
                    ),
                }
            )
        for chart_id, (lines, y_format, target) in charts.items():
            chart = self.query_one(f"#{chart_id}", Chart)
            chart.empty_note = _empty_note(whole, chart_id)
            chart.plot(
                ChartSpec(
                    tuple(lines),
                    t0,
                    now,
                    y_format,
                    axis,
                    target,
                    p.warn,
                    marks=marks if chart_id == "latency" else (),
                )
            )
        procs = self.query_one("#procs", ProcessTable)
        procs.pids = set(model.processes) if model else set()
        procs.show(view)
        self._replicas(view, bool(procs.keys))
        ptitle = table_title("Processes", procs)
        if model and model.gpus:
            ptitle.append(" · GPU " + ",".join(str(i) for i in model.gpus))
        set_title(procs, ptitle)
        alerts = self.query_one("#model-alerts", AlertTable)
        alerts.show(view)
        note = alerts.footnote(view) if alerts.keys else Text("none")
        set_title(alerts, Text(f"Alerts ({len(alerts.keys)})"), note)

    def _replicas(self, view: View, has_procs: bool) -> None:
        """Served on fleet hosts: a row per host, the slowest first; Enter opens the host.
        It takes the processes' place when there are none (a model seen through Prometheus)."""
        replicas = self.query_one("#replicas", ReplicaTable)
        replicas.show(view)
        shown = bool(replicas.total)
        replicas.display = shown
        self.query_one("#procs").display = has_procs or not shown
        if not shown:
            return
        set_title(replicas, table_title("Replicas", replicas))
        if not self._replicas_focused:  # once: "which replica is slow" is then one Enter
            self._replicas_focused = True
            replicas.focus()

    def filter_table(self) -> FrameTable | None:
        replicas = self.query_one("#replicas", ReplicaTable)
        alone = replicas.display and not self.query_one("#procs").display
        return replicas if alone else super().filter_table()

    def on_frame_table_chosen(self, event: FrameTable.Chosen) -> None:
        if event.table.id == "replicas":
            self.post_message(OpenHost(event.key))


def _in_gib(points: list[Point]) -> list[Point]:
    return [(t, v / cells.GIB) for t, v in points]


def _empty_note(model: object, chart_id: str) -> str:
    if chart_id == "vram":
        return "no data yet"
    if chart_id in SERVING_CHARTS:  # the reason its own figures are missing
        unavailable = getattr(model, "unavailable", None) or {}
        for key in SERVING_CHARTS[chart_id]:
            if f"extras.{key}" in unavailable:
                return clean.literal(unavailable[f"extras.{key}"])
        return "no data yet"
    # Serving figures need Prometheus or a scrape; with NVML alone they are not available.
    reason = ""
    if model is not None:
        unavailable = getattr(model, "unavailable", {})
        reason = next(iter(unavailable.values()), "") if unavailable else ""
    return clean.literal(reason) if reason else "no serving metrics"
