"""Models: VRAM, KV cache, latency quantiles, TTFT, request rate, errors, queue and where they
run. The serving columns (KV%, TTFT...) appear when a model has them, or as configured."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text

from vramtop import serving, units
from vramtop.export.columns import (
    MODEL_BASE,
    MODEL_COLUMNS,
    MODEL_KEYS,
    auto_columns,
    model_spec,
)
from vramtop.model import ModelReading
from vramtop.tui import cells
from vramtop.tui.view import View
from vramtop.tui.widgets.frame_table import Col, FrameTable, Item

ALL_COLUMNS = MODEL_COLUMNS
COLUMN_KEYS = MODEL_KEYS
BASE = MODEL_BASE
spec_of = model_spec
_BY_KEY = {c.key: c for c in ALL_COLUMNS}


class ModelTable(FrameTable):
    COLUMNS: ClassVar[tuple[Col, ...]] = spec_of(BASE)
    DEFAULT_SORT = "vram"
    DEFAULT_REVERSE = True
    DESCENDING_FIRST = frozenset(set(COLUMN_KEYS) - {"name", "gpus", "hosts", "via"})
    NOUN = "models"

    def show(self, view: View) -> None:
        self.view = view
        keys = view.model_columns or auto_columns(view.frame.models)
        self.set_spec(spec_of(keys))
        self.show_items(self.build_items(view))

    @property
    def uses_means(self) -> bool:
        """A p95 cell shows a mean (``~``): the panel says what ``~`` means."""
        view = self.view
        if view is None or "p95" not in {c.key for c in self.spec}:
            return False
        return any(
            m.latency_p95_seconds is None and serving.stand_in(m.extras, "latency_p95_seconds")
            for m in view.frame.models
        )

    def items_for(self, view: View) -> list[Item]:
        totals = {g.index: g.memory_total_bytes for g in view.frame.gpus}
        return [
            self.reuse(m.name, (m, [totals.get(i) for i in m.gpus]), self._maker(view, m, totals))
            for m in view.frame.models
        ]

    def _maker(
        self, view: View, m: ModelReading, totals: dict[int, int | None]
    ) -> Callable[[], Item]:
        return lambda: self._item(view, m, totals)

    def _item(self, view: View, m: ModelReading, totals: dict[int, int | None]) -> Item:
        p, t = view.palette, view.targets
        capacity = sum(totals.get(i) or 0 for i in m.gpus)
        share = m.vram_bytes / capacity if m.vram_bytes is not None and capacity else None
        vram_role = "bad" if share is not None and share >= t.vram_critical_ratio else None
        target = t.p95_for(m.name)
        x = m.extras
        p95, p95_text = m.latency_p95_seconds, cells.seconds(m.latency_p95_seconds)
        if p95 is None and (mean := serving.stand_in(x, "latency_p95_seconds")):
            p95, p95_text = mean[1], serving.fmt(mean[0], mean[1], compact=True)
        kv = x.get("kv_cache_usage_ratio")
        ttft = x.get("ttft_p95_seconds")
        c: dict[str, Text] = {
            "name": cells.lit(m.name, p.text),
            "vram": cells.number(cells.gib(m.vram_bytes), p, vram_role),
            "kv": cells.number(
                units.percent(None if kv is None else kv * 100),
                p,
                cells.over(kv, t.kv_cache_warning_ratio, 0.9),
            ),
            "p50": cells.number(
                cells.seconds(m.latency_p50_seconds), p, cells.over(m.latency_p50_seconds, target)
            ),
            "p95": cells.number(p95_text, p, cells.over(p95, target)),
            "ttft": cells.number(cells.seconds(ttft), p, cells.over(ttft, t.ttft_p95_seconds)),
            "itl": cells.number(cells.seconds(x.get("inter_token_p95_seconds")), p),
            "p99": cells.number(
                cells.seconds(m.latency_p99_seconds),
                p,
                "warn" if cells.over(m.latency_p99_seconds, target) else None,
            ),
            "tokens": cells.number(_per_s(x.get("generation_tokens_per_second")), p),
            "running": cells.number(cells.count(x.get("running_requests")), p),
            "rps": cells.number(cells.rate(m.requests_per_second), p),
            "err": cells.number(
                cells.percent_ratio(m.error_ratio), p, cells.over(m.error_ratio, t.error_ratio, 0.5)
            ),
            "queue": cells.number(
                cells.count(m.queue_length), p, cells.over(m.queue_length, t.queue_length_warning)
            ),
            "preempt": cells.number(
                _per_s(x.get("preemptions_per_second")),
                p,
                "warn" if x.get("preemptions_per_second") else None,
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
                "kv": kv,
                "p50": m.latency_p50_seconds,
                "p95": p95,
                "ttft": ttft,
                "itl": x.get("inter_token_p95_seconds"),
                "p99": m.latency_p99_seconds,
                "tokens": x.get("generation_tokens_per_second"),
                "running": x.get("running_requests"),
                "rps": m.requests_per_second,
                "err": m.error_ratio,
                "queue": m.queue_length,
                "preempt": x.get("preemptions_per_second"),
                "gpus": m.gpus[0] if m.gpus else None,
                "hosts": ", ".join(m.instances) or None,
                "via": ", ".join(m.sources) or None,
            },
            search=f"{m.name} {' '.join(m.instances)}".lower(),
        )


def _per_s(value: float | None) -> str:
    return cells.rate(value).removesuffix("/s")


def column_label(key: str) -> str:
    return _BY_KEY[key].label
