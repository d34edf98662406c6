"""The first screen: GPUs, models, alerts, host and sources on one page."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.widgets import Footer

from vramtop.serving import MEAN_LEGEND
from vramtop.tui.messages import OpenGpu, OpenModel
from vramtop.tui.screens.base import LiveScreen, set_title, table_title
from vramtop.tui.view import View
from vramtop.tui.widgets.alert_table import AlertTable
from vramtop.tui.widgets.filter_bar import FilterBar
from vramtop.tui.widgets.frame_table import FrameTable
from vramtop.tui.widgets.gpu_table import GpuTable
from vramtop.tui.widgets.host_panel import HostPanel
from vramtop.tui.widgets.model_table import ModelTable
from vramtop.tui.widgets.process_table import ProcessTable
from vramtop.tui.widgets.status_bar import StatusBar

TALL = 40  # rows from which the overview also lists processes


class OverviewScreen(LiveScreen):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter"),
        Binding("escape", "back", "Clear filter", show=False),
        Binding("tab", "app.focus_next", "Next panel", show=False),
        Binding("shift+tab", "app.focus_previous", "Previous panel", show=False),
    ]
    FILTER_TABLE = "models"

    def compose(self) -> ComposeResult:
        yield StatusBar()
        yield from self.header()
        yield GpuTable(id="gpus")
        yield ModelTable(id="models")
        yield ProcessTable(id="procs")
        with Horizontal(id="bottom"):
            yield AlertTable(id="alerts")
            yield HostPanel(id="host")
        yield FilterBar("models", id="filter")
        yield Footer(compact=True, show_command_palette=False)

    def header(self) -> ComposeResult:
        """Lines above the GPUs (a fleet host's name and state)."""
        yield from ()

    def on_mount(self) -> None:
        self.query_one("#gpus").focus()

    def on_resize(self) -> None:
        # A tall terminal has room for every GPU process too, as nvitop shows them.
        tall = self.size.height >= TALL
        if tall != self.has_class("tall"):
            self.set_class(tall, "tall")
            if tall and self.view is not None:
                self.draw(self.view)

    def draw(self, view: View) -> None:
        gpus = self.query_one("#gpus", GpuTable)
        models = self.query_one("#models", ModelTable)
        alerts = self.query_one("#alerts", AlertTable)
        host = self.query_one("#host", HostPanel)
        gpus.show(view)
        models.show(view)
        alerts.show(view)
        host.show(view)
        if self.has_class("tall"):
            procs = self.query_one("#procs", ProcessTable)
            procs.show(view)
            set_title(procs, table_title("Processes", procs))
        frame = view.frame
        gtitle = table_title("GPUs", gpus)
        if frame.demo:
            gtitle.append(" · DEMO: simulated", view.palette.warn)
        nvml = frame.source("nvml")
        gsub = None
        if not frame.gpus and nvml is not None and nvml.detail:
            gsub = Text(nvml.detail)
        set_title(gpus, gtitle, gsub)
        msub = None if frame.models else Text("no models identified yet")
        if models.uses_means:
            msub = Text(MEAN_LEGEND)
        set_title(models, table_title("Models", models), msub)
        firing = sum(1 for a in frame.alerts if a.state == "firing" and not a.silenced)
        atitle = Text(f"Alerts ({firing} firing)" if frame.alerts else "Alerts")
        if frame.alerts:
            asub = alerts.footnote(view)
        elif any(s.name in ("alerts", "alertmanager") for s in frame.sources):
            asub = Text("none firing")
        elif view.local_rules:
            asub = Text("none firing (local rules only)")
        else:
            asub = Text("no alert source configured")
        set_title(alerts, atitle, asub)
        set_title(host, Text("Host & sources"))

    def on_frame_table_chosen(self, event: FrameTable.Chosen) -> None:
        host = self.host
        if event.table.id == "gpus" and isinstance(event.table, GpuTable):
            gpu = event.table.gpu_of(event.key)
            if gpu is not None:
                self.post_message(OpenGpu(gpu.index, host or gpu.host))
        elif event.table.id == "procs":
            self.post_message(OpenGpu(int(event.key.split(":")[0]), host))
        elif event.table.id == "alerts" and isinstance(event.table, AlertTable):
            model = event.table.model_of(event.key)
            if model is not None:
                self.post_message(OpenModel(model, host))
        elif event.table.id == "models":
            self.post_message(OpenModel(event.key, host))
