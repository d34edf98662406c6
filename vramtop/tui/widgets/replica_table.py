"""One model's replicas: its figures on each fleet host (ModelReading.by_instance)."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text

from vramtop.model import InstanceFigures, ModelReading
from vramtop.tui import cells
from vramtop.tui.view import View
from vramtop.tui.widgets.frame_table import Col, FrameTable, Item


class ReplicaTable(FrameTable):
    COLUMNS: ClassVar[tuple[Col, ...]] = (
        Col("host", "Host", 12, flex=True, max_width=40),
        Col("vram", "VRAM", 7, justify="right"),
        Col("p95", "p95", 6, justify="right"),
        Col("queue", "Queue", 5, justify="right"),
        Col("rps", "Req/s", 7, priority=1, justify="right"),
    )
    DEFAULT_SORT = "p95"  # the slow replica on top
    DEFAULT_REVERSE = True
    DESCENDING_FIRST = frozenset({"vram", "p95", "queue", "rps"})
    NOUN = "replicas"

    def __init__(self, name: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.model_name = name

    def model(self, view: View) -> ModelReading | None:
        """The model across the fleet: a host's screen still lists every replica."""
        return next((m for m in view.fleet_frame.models if m.name == self.model_name), None)

    def items_for(self, view: View) -> list[Item]:
        model = self.model(view)
        return [self._item(view, f) for f in model.by_instance] if model else []

    def _item(self, view: View, f: InstanceFigures) -> Item:
        p, t = view.palette, view.targets
        c: dict[str, Text] = {
            "host": cells.lit(f.instance, p.text),
            "vram": cells.number(cells.gib(f.vram_bytes), p),
            "p95": cells.number(
                cells.seconds(f.latency_p95_seconds),
                p,
                cells.over(f.latency_p95_seconds, t.p95_for(self.model_name)),
            ),
            "queue": cells.number(
                cells.count(f.queue_length), p, cells.over(f.queue_length, t.queue_length_warning)
            ),
            "rps": cells.number(cells.rate(f.requests_per_second), p),
        }
        return Item(
            key=f.instance,
            cells=c,
            sort={
                "host": f.instance.lower(),
                "vram": f.vram_bytes,
                "p95": f.latency_p95_seconds,
                "queue": f.queue_length,
                "rps": f.requests_per_second,
            },
            search=f.instance.lower(),
        )
