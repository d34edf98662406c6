"""One model's header in its drill-down: VRAM, where it runs, its figures against targets."""

from __future__ import annotations

from rich.text import Text

from vramtop import clean, serving
from vramtop.export import fmt
from vramtop.links import for_model
from vramtop.model import ModelReading
from vramtop.tui import cells
from vramtop.tui.linking import links_text
from vramtop.tui.view import View
from vramtop.tui.widgets.text_panel import TextPanel


class ModelInfo(TextPanel):
    DEFAULT_CSS = "ModelInfo { height: auto; }"

    def __init__(self, name: str, *, id: str | None = None) -> None:
        super().__init__(Text(clean.literal(name)), id=id)
        self.model_name = name
        self.last_seen: float | None = None

    def show(self, view: View) -> None:
        model = next((m for m in view.frame.models if m.name == self.model_name), None)
        if model is not None:
            self.last_seen = view.frame.time
        text = self.compose_text(view, model)
        self.set_text(text)

    def compose_text(self, view: View, m: ModelReading | None) -> Text:
        p, t = view.palette, view.targets
        out = Text()
        out.append("Model ", p.dim)
        out.append(clean.literal(self.model_name), p.accent)
        if m is None:
            seen = f" (last seen {fmt.time_of_day(self.last_seen)})" if self.last_seen else ""
            out.append(f"  not in the latest frame{seen}", p.bad)
            return out
        out.append("  VRAM ", p.dim)
        out.append(fmt.human_bytes(m.vram_bytes), p.text)
        if m.gpus:
            out.append(" on GPU " + ",".join(str(i) for i in m.gpus), p.text)
        if m.sources:
            out.append("  via " + ", ".join(m.sources), p.dim)
        if m.profile:
            out.append("  profile " + clean.literal(m.profile), p.dim)
        if m.instances:
            out.append("  hosts ", p.dim)
            out.append(clean.literal(", ".join(m.instances)), p.text)
        out.append("\n")
        target = t.p95_for(m.name)
        figures = (
            (
                "p50",
                cells.seconds(m.latency_p50_seconds),
                cells.over(m.latency_p50_seconds, target),
            ),
            (
                "p95",
                cells.seconds(m.latency_p95_seconds),
                cells.over(m.latency_p95_seconds, target),
            ),
            ("p99", cells.seconds(m.latency_p99_seconds), None),
            ("req/s", cells.rate(m.requests_per_second).removesuffix("/s"), None),
            (
                "errors",
                cells.percent_ratio(m.error_ratio),
                cells.over(m.error_ratio, t.error_ratio, 0.5),
            ),
            (
                "queue",
                cells.count(m.queue_length),
                cells.over(m.queue_length, t.queue_length_warning),
            ),
        )
        for i, (label, value, role) in enumerate(figures):
            out.append(("  " if i else "") + label + " ", p.dim)
            out.append(value, p.dim if value == fmt.NA else p.role(role))
        if m.latency_p95_seconds is None and serving.stand_in(m.extras, "latency_p95_seconds"):
            out.append("  (" + serving.MEAN_LEGEND + ")", p.dim)
        if keys := serving.present((m,)):  # the LLM serving figures, with units
            out.append("\n")
            roles = {
                "kv_cache_usage_ratio": t.kv_cache_warning_ratio,
                "ttft_p95_seconds": t.ttft_p95_seconds,
            }
            for i, key in enumerate(keys):
                value = m.extras[key]
                out.append(("  " if i else "") + clean.literal(serving.label(key)) + " ", p.dim)
                out.append(serving.fmt(key, value), p.role(cells.over(value, roles.get(key))))
        # One line per reason: a host's replica lacks several figures for the same one.
        by_reason: dict[str, list[str]] = {}
        for key, reason in m.unavailable.items():
            figure = key.removeprefix("extras.")
            if key.startswith("extras.") and figure in serving.BY_KEY:
                key = serving.label(figure)
            by_reason.setdefault(reason, []).append(key)
        for reason, keys in by_reason.items():
            out.append(f"\n{', '.join(keys)}: ", p.dim)
            out.append(clean.literal(reason), p.dim)
        if links := for_model(view.links, m, view.frame.host.hostname):
            out.append("\n")
            out.append_text(links_text(links, p))
        return out
