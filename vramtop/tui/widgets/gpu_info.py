"""One GPU's header in its drill-down: identity, VRAM bar, use, power, MIG devices, gaps."""

from __future__ import annotations

from rich.text import Text

from vramtop import clean
from vramtop.export import fmt
from vramtop.links import for_gpu
from vramtop.model import GpuReading
from vramtop.tui import cells
from vramtop.tui.linking import links_text
from vramtop.tui.view import View
from vramtop.tui.widgets.gpu_table import find_gpu
from vramtop.tui.widgets.text_panel import TextPanel


class GpuInfo(TextPanel):
    DEFAULT_CSS = "GpuInfo { height: auto; }"

    def __init__(self, index: int, host: str | None = None, *, id: str | None = None) -> None:
        super().__init__(Text(f"GPU {index}"), id=id)
        self.index = index
        self.host = host

    def show(self, view: View) -> None:
        gpu = find_gpu(view.frame.gpus, self.index)
        text = self.compose_text(view, gpu)
        self.set_text(text)

    def compose_text(self, view: View, g: GpuReading | None) -> Text:
        p = view.palette
        out = Text()
        out.append(f"GPU {self.index} ", p.accent)
        if self.host is not None:
            out.append("on ", p.dim)
            out.append(clean.literal(self.host) + " ", p.accent)
        if g is None:
            out.append("is not in the latest frame (not selected, or gone)", p.bad)
            return out
        out.append(clean.literal(g.name or fmt.NA), p.text)
        out.append("  " + clean.literal(g.uuid or fmt.NA), p.dim)
        if g.state != "ok":
            out.append("\n")
            out.append(" LOST ", p.alarm)
            out.append(" " + clean.literal(g.unavailable.get("state", "GPU lost")), p.bad)
            return out
        share = g.memory_fraction
        role = cells.vram_role(share, view.targets.vram_critical_ratio)
        out.append("\nVRAM ", p.dim)
        out.append_text(cells.bar(share, 24, p.role(role), p.dim))
        out.append(" " + fmt.used_of(g.memory_used_bytes, g.memory_total_bytes), p.role(role))
        if g.memory_reserved_bytes:
            out.append(f"  reserved {fmt.human_bytes(g.memory_reserved_bytes)}", p.dim)
        out.append("\nUtil ", p.dim)
        out.append(fmt.pct(g.utilization_percent), p.text)
        out.append("  Mem util ", p.dim)
        out.append(fmt.pct(g.memory_utilization_percent), p.text)
        out.append("  Temp ", p.dim)
        out.append(fmt.num(g.temperature_c, "°C"), p.text)
        out.append("  Power ", p.dim)
        out.append(fmt.power(g.power_watts, g.power_limit_watts), p.text)
        out.append("  MIG ", p.dim)
        out.append(fmt.mig(g.mig_mode), p.text)
        for m in g.mig_devices:
            out.append("\n  MIG ", p.dim)
            gi = "?" if m.gpu_instance_id is None else str(m.gpu_instance_id)
            out.append(f"GI {gi} ", p.text)
            out.append(clean.literal(m.uuid), p.dim)
            out.append("  " + fmt.used_of(m.memory_used_bytes, m.memory_total_bytes), p.text)
        if g.mig_mode and not g.mig_devices:
            out.append("\n  MIG is on but no MIG devices are configured", p.dim)
        for key, reason in g.unavailable.items():
            out.append(f"\n{key}: ", p.dim)
            out.append(clean.literal(reason), p.dim)
        if links := for_gpu(view.links, g, view.frame.host.hostname):
            out.append("\n")
            out.append_text(links_text(links, p))
        return out
