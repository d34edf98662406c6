"""Fleet hosts: one row each from vramtop.fleet.host_rows, worst first by default."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text

from vramtop.fleet import HostRow, P95Target, Worst, target_of
from vramtop.tui import cells
from vramtop.tui.palette import Palette
from vramtop.tui.view import View
from vramtop.tui.widgets.frame_table import Col, FrameTable, Item


class HostTable(FrameTable):
    COLUMNS: ClassVar[tuple[Col, ...]] = (
        Col("host", "Host", 14, flex=True, max_width=40),
        Col("state", "State", 9),
        Col("gpus", "GPUs", 4, priority=2, justify="right"),
        Col("bar", "VRAM", 8, priority=3, flex=True, max_width=24),
        Col("used", "Used", 10, justify="right"),
        Col("util", "Util", 7, priority=1, justify="right"),
        Col("models", "Models", 12, priority=4, flex=True, max_width=40),
        Col("p95", "Worst p95", 16, flex=True, max_width=36),
        Col("queue", "Longest queue", 13, priority=3, flex=True, max_width=32),
        Col("alerts", "Alerts", 6, justify="right"),
    )
    DEFAULT_SORT = "state"  # the fleet's own order: down, firing alerts, latency past target
    DESCENDING_FIRST = frozenset({"gpus", "bar", "used", "util", "models", "p95", "queue"})
    DESCENDING_FIRST |= {"alerts"}
    NOUN = "hosts"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.by_key: dict[str, HostRow] = {}

    def items_for(self, view: View) -> list[Item]:
        rows = view.host_rows()
        self.by_key = {r.instance: r for r in rows}
        # Cells are made only for the rows drawn; a row is compared by what it shows.
        context = (view.palette, view.targets, self.width_of("bar"))
        return [self._item(view, r, rank, context) for rank, r in enumerate(rows)]

    def row_of(self, key: str | None) -> HostRow | None:
        return None if key is None else self.by_key.get(key)

    def _item(self, view: View, r: HostRow, rank: int, context: tuple) -> Item:
        p95, queue = r.worst_p95, r.longest_queue
        down_for = None if r.up or r.last_seen is None else cells.age(view.now - r.last_seen)
        return Item(
            key=r.instance,
            make=lambda: self._cells(view, r),
            sig=(
                context,
                r.instance,
                r.up,
                down_for,
                r.gpu_count,
                r.gpu_memory_used_bytes,
                r.gpu_memory_total_bytes,
                r.utilization_mean_percent,
                r.utilization_max_percent,
                r.models,
                p95,
                queue,
                r.alerts_firing,
            ),
            sort={
                "host": r.instance.lower(),
                "state": rank,
                "gpus": r.gpu_count,
                "bar": r.memory_fraction,
                "used": r.gpu_memory_used_bytes,
                "util": r.utilization_mean_percent,
                "models": len(r.models),
                "p95": None if p95 is None else p95.value,
                "queue": None if queue is None else queue.value,
                "alerts": r.alerts_firing,
            },
            search=" ".join((r.instance, "up" if r.up else "down", r.detail, *r.models)).lower(),
        )

    def _cells(self, view: View, r: HostRow) -> dict[str, Text]:
        p, t = view.palette, view.targets
        share = r.memory_fraction
        role = cells.vram_role(share, t.vram_critical_ratio)
        return {
            "host": cells.lit(r.instance, p.text),
            "state": state_cell(r, view),
            "gpus": cells.number(str(r.gpu_count), p) if r.gpu_count else cells.dash(p),
            "bar": cells.bar(share, self.width_of("bar"), p.role(role), p.dim),
            "used": cells.number(
                cells.used_total(r.gpu_memory_used_bytes, r.gpu_memory_total_bytes),
                p,
                role if role == "bad" else None,
            ),
            "util": _util(r, p),
            "models": _models(r, p),
            "p95": _worst(r.worst_p95, cells.seconds, p, t.p95_for),
            "queue": _worst(r.longest_queue, cells.count, p, t.queue_length_warning),
            "alerts": cells.plain(str(r.alerts_firing), p.bad, "right")
            if r.alerts_firing
            else cells.plain("0", p.dim, "right"),
        }


def state_cell(r: HostRow, view: View) -> Text:
    p = view.palette
    if r.up:
        return cells.plain("up", p.good)
    text = cells.plain("DOWN", p.bad)
    if r.last_seen is not None:
        text.append(" " + cells.age(max(0.0, view.now - r.last_seen)), p.dim)
    return text


def _util(r: HostRow, p: Palette) -> Text:
    mean, top = r.utilization_mean_percent, r.utilization_max_percent
    if mean is None or top is None:
        return cells.dash(p)
    return cells.plain(f"{mean:.0f}/{top:.0f}%", p.text, "right")


def _models(r: HostRow, p: Palette) -> Text:
    if not r.models:
        return cells.dash(p, "left")
    text = cells.plain(f"{len(r.models)} ", p.text)
    text.append_text(cells.lit(", ".join(r.models), p.dim))
    return text


def _worst(w: Worst | None, shown, p: Palette, target: P95Target) -> Text:  # type: ignore[no-untyped-def]
    """A figure and the model it belongs to, coloured against that model's target."""
    if w is None:
        return cells.dash(p, "left")
    text = cells.plain(shown(w.value), p.role(cells.over(w.value, target_of(target, w.model))))
    text.append(" ")
    text.append_text(cells.lit(w.model, p.dim))
    return text
