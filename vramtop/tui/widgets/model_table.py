"""Models: VRAM, latency quantiles, request rate, errors, queue and where they run."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text

from vramtop.model import ModelReading
from vramtop.tui import cells
from vramtop.tui.view import View
from vramtop.tui.widgets.frame_table import Col, FrameTable, Item


class ModelTable(FrameTable):
    COLUMNS: ClassVar[tuple[Col, ...]] = (
        Col("name", "Model", 16, flex=True, max_width=48),
        Col("vram", "VRAM", 7, justify="right"),
        Col("p50", "p50", 6, priority=2, justify="right"),
        Col("p95", "p95", 6, justify="right"),
        Col("p99", "p99", 6, priority=1, justify="right"),
        Col("rps", "Req/s", 7, justify="right"),
        Col("err", "Err", 6, justify="right"),
        Col("queue", "Queue", 5, justify="right"),
        Col("gpus", "GPUs", 5, priority=3),
        Col("hosts", "Hosts", 12, priority=4, flex=True, max_width=40),
        Col("via", "Via", 7, priority=5),
    )
    DEFAULT_SORT = "vram"
    DEFAULT_REVERSE = True
    DESCENDING_FIRST = frozenset({"vram", "p50", "p95", "p99", "rps", "err", "queue"})
    NOUN = "models"

    def items_for(self, view: View) -> list[Item]:
        totals = {g.index: g.memory_total_bytes for g in view.frame.gpus}
        return [self._item(view, m, totals) for m in view.frame.models]

    def _item(self, view: View, m: ModelReading, totals: dict[int, int | None]) -> Item:
        p, t = view.palette, view.targets
        capacity = sum(totals.get(i) or 0 for i in m.gpus)
        share = m.vram_bytes / capacity if m.vram_bytes is not None and capacity else None
        vram_role = "bad" if share is not None and share >= t.vram_critical_ratio else None
        target = t.inference_p95_seconds
        c: dict[str, Text] = {
            "name": cells.lit(m.name, p.text),
            "vram": cells.number(cells.gib(m.vram_bytes), p, vram_role),
            "p50": cells.number(
                cells.seconds(m.latency_p50_seconds), p, cells.over(m.latency_p50_seconds, target)
            ),
            "p95": cells.number(
                cells.seconds(m.latency_p95_seconds), p, cells.over(m.latency_p95_seconds, target)
            ),
            "p99": cells.number(
                cells.seconds(m.latency_p99_seconds),
                p,
                "warn" if cells.over(m.latency_p99_seconds, target) else None,
            ),
            "rps": cells.number(cells.rate(m.requests_per_second), p),
            "err": cells.number(
                cells.percent_ratio(m.error_ratio), p, cells.over(m.error_ratio, t.error_ratio, 0.5)
            ),
            "queue": cells.number(
                cells.count(m.queue_length), p, cells.over(m.queue_length, t.queue_length_warning)
            ),
            "gpus": cells.plain(",".join(str(i) for i in m.gpus) or cells.DASH, p.text),
            "hosts": cells.lit(", ".join(m.instances), p.dim)
            if m.instances
            else cells.dash(p, "left"),
            "via": cells.plain(", ".join(m.sources) or m.profile or cells.DASH, p.dim),
        }
        return Item(
            key=m.name,
            cells=c,
            sort={
                "name": m.name.lower(),
                "vram": m.vram_bytes,
                "p50": m.latency_p50_seconds,
                "p95": m.latency_p95_seconds,
                "p99": m.latency_p99_seconds,
                "rps": m.requests_per_second,
                "err": m.error_ratio,
                "queue": m.queue_length,
                "gpus": m.gpus[0] if m.gpus else None,
                "hosts": ", ".join(m.instances) or None,
                "via": ", ".join(m.sources) or None,
            },
            search=f"{m.name} {' '.join(m.instances)}".lower(),
        )
