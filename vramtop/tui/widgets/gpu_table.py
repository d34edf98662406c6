"""GPUs: one row each with a VRAM bar, use, temperature, power and a VRAM sparkline."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text

from vramtop import clean, health
from vramtop.export import fmt
from vramtop.export.columns import GPU_COLUMNS, GPU_HOST, gpu_spec
from vramtop.export.overview import short_name
from vramtop.history import gpu_key as series_key
from vramtop.model import GpuReading
from vramtop.tui import cells
from vramtop.tui.view import View
from vramtop.tui.widgets.frame_table import Col, FrameTable, Item


class GpuTable(FrameTable):
    COLUMNS: ClassVar[tuple[Col, ...]] = GPU_COLUMNS
    HOST = GPU_HOST
    DEFAULT_SORT = "index"
    DESCENDING_FIRST = frozenset({"bar", "used", "share", "util", "temp", "power", "procs"})
    HEALTH_RANK: ClassVar[dict[str, int]] = {"critical": 0, "warning": 1, "info": 2, "ok": 3}
    NOUN = "GPUs"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.by_key: dict[str, GpuReading] = {}

    def show(self, view: View) -> None:
        # GPUs of several hosts (the whole fleet on one overview): say whose each one is.
        spans = len({g.host for g in view.frame.gpus}) > 1
        self.view = view
        self.set_spec(gpu_spec(spans))
        super().show(view)

    def items_for(self, view: View) -> list[Item]:
        items = [self._item(view, g) for g in view.frame.gpus]
        self.by_key = {item.key: g for item, g in zip(items, view.frame.gpus, strict=True)}
        return items

    def gpu_of(self, key: str) -> GpuReading | None:
        return self.by_key.get(key)

    def _item(self, view: View, g: GpuReading) -> Item:
        p = view.palette
        share = g.memory_fraction
        critical = view.targets.vram_critical_ratio
        role = cells.vram_role(share, critical)
        bar_w = self.width_of("bar")
        spark_w = self.width_of("spark")
        total = g.memory_total_bytes
        recent = view.history.last(
            ("gpu", series_key(g.index, g.host), "memory_used_bytes"), spark_w
        )
        spark = (
            cells.spark([v / total for v in recent], spark_w, p.primary)
            if total
            else Text(" " * spark_w)
        )
        lost = g.state != "ok"
        word, severity = health.finding(g, view.frame.events, view.frame.time)
        c: dict[str, Text] = {
            "health": cells.lit(word, p.severity(severity)),
            "index": cells.plain(str(g.index), p.bad if lost else p.text, "right"),
            "name": cells.lit(short_name(g.name)),
            "spark": spark,
            "host": cells.lit(g.host, p.dim) if g.host else cells.dash(p, "left"),
        }
        if lost:
            reason = g.unavailable.get("state", "GPU lost")
            text = Text(" LOST ", style=p.alarm, no_wrap=True, overflow="ellipsis")
            text.append(" " + clean.literal(reason), p.bad)
            c["bar"] = text
            for key in ("used", "share", "util", "temp", "power", "procs"):
                c[key] = cells.dash(p)
        else:
            c["bar"] = cells.bar(share, bar_w, p.role(role), p.dim)
            c["used"] = cells.number(
                cells.used_total(g.memory_used_bytes, total), p, role if role == "bad" else None
            )
            c["share"] = cells.number(fmt.pct(None if share is None else share * 100), p, role)
            c["util"] = cells.number(fmt.pct(g.utilization_percent), p)
            c["temp"] = cells.number(
                fmt.num(g.temperature_c, "°C"), p, cells.over(g.temperature_c, 85.0, 0.94)
            )
            c["power"] = cells.number(_power(g), p)
            c["procs"] = cells.number(str(len(g.processes)), p)
        return Item(
            key=gpu_key(g),
            cells=c,
            sort={
                "index": (g.host or "", g.index),
                "host": g.host or "",
                "name": g.name or "",
                "bar": share,
                "used": g.memory_used_bytes,
                "share": share,
                "util": g.utilization_percent,
                "temp": g.temperature_c,
                "power": g.power_watts,
                "procs": len(g.processes),
                "health": self.HEALTH_RANK.get(severity),  # the worst first; unknown last
            },
            search=f"{g.index} {g.name or ''} {g.uuid or ''} {g.host or ''}".lower(),
        )


def gpu_key(g: GpuReading) -> str:
    """A row's key: the index, and the host where indices repeat across a fleet."""
    return str(g.index) if g.host is None else f"{g.index}@{g.host}"


def _power(g: GpuReading) -> str:
    return cells.power(g.power_watts, g.power_limit_watts)


def find_gpu(gpus: Iterable[GpuReading], index: int) -> GpuReading | None:
    """The GPU with that index; this machine's first where a fleet repeats the index (a
    screen for a fleet host's GPU draws a Frame scoped to that host)."""
    found = [g for g in gpus if g.index == index]
    return next((g for g in found if g.host is None), found[0] if found else None)
