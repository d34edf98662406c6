"""Host CPU, memory, load and disk, then one status line per source."""

from __future__ import annotations

from rich.text import Text

from vramtop import clean
from vramtop.export import fmt
from vramtop.model import Frame, SourceStatus
from vramtop.tui import cells
from vramtop.tui.view import View
from vramtop.tui.widgets.text_panel import TextPanel

_MARK = {"ok": "●", "stale": "▲", "error": "✗", "disabled": "○"}


class HostPanel(TextPanel):
    DEFAULT_CSS = "HostPanel { height: auto; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text("waiting for the first frame…"), id=id)

    def show(self, view: View) -> None:
        text = self.compose_text(view)
        self.set_text(text)

    @staticmethod
    def compose_text(view: View) -> Text:
        p, t, h = view.palette, view.targets, view.frame.host
        out = Text(no_wrap=False, overflow="fold")
        cpu_role = cells.over(
            None if h.cpu_percent is None else h.cpu_percent / 100, t.cpu_warning_ratio, 0.9
        )
        out.append("CPU ", p.dim)
        out.append(fmt.pct(h.cpu_percent), p.role(cpu_role))
        if h.cpu_count:
            out.append(f" of {h.cpu_count}", p.dim)
        out.append("  Load ", p.dim)
        load = " ".join(fmt.fixed(x, 1) for x in h.load_average) if h.load_average else fmt.NA
        out.append(load, p.text)
        out.append("\n")
        out.append("Mem ", p.dim)
        out.append(_used(h.memory_used_bytes, h.memory_total_bytes), p.text)
        out.append("  Disk ", p.dim)
        if h.disk_path != "/":
            out.append(clean.literal(h.disk_path) + " ", p.dim)
        out.append(_used(h.disk_used_bytes, h.disk_total_bytes), p.text)
        for line in source_lines(view.frame, view):
            out.append("\n")
            out.append_text(line)
        return out


def _used(used: int | None, total: int | None) -> str:
    """``31% of 1.0T``: what fits a narrow panel; the snapshot has the exact figures."""
    if used is None or not total:
        return cells.used_total(used, total)
    return f"{fmt.pct(used / total * 100)} of {cells.gib(total)}"


def source_lines(frame: Frame, view: View) -> list[Text]:
    """Healthy sources share one line; each one in trouble gets its own, with the reason."""
    p = view.palette
    lines: list[Text] = []
    healthy = Text(no_wrap=False)
    for s in frame.sources:
        if s.state in ("ok", "disabled"):
            if healthy:
                healthy.append("  ")
            style = p.good if s.state == "ok" else p.dim
            healthy.append(f"{_MARK[s.state]} ", style)
            healthy.append(clean.literal(s.name), p.text if s.state == "ok" else p.dim)
            healthy.append(" ok" if s.state == "ok" else " off", p.dim)
        else:
            lines.append(trouble_line(s, view))
    return ([healthy] if healthy else []) + lines


def trouble_line(s: SourceStatus, view: View) -> Text:
    p = view.palette
    style = p.warn if s.state == "stale" else p.bad
    text = Text(no_wrap=False)
    text.append(f"{_MARK.get(s.state, '?')} ", style)
    text.append(clean.literal(s.name), style)
    if s.state == "stale" and s.since is not None:
        text.append(f" stale since {fmt.time_of_day(s.since)}", style)
    else:
        text.append(f" {s.state}", style)
    if s.detail:
        text.append(": " + clean.literal(s.detail), p.dim)
    return text
