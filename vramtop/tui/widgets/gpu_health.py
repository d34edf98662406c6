"""One GPU's health in its drill-down: its findings, every GpuHealth field with its unit (or the
reason it is unknown), and its recent health events with their times."""

from __future__ import annotations

from collections.abc import Iterable

from rich.style import Style
from rich.text import Text

from vramtop import clean, health, units
from vramtop.export import fmt
from vramtop.model import GpuHealth, GpuReading, HealthEvent
from vramtop.tui.palette import Palette
from vramtop.tui.view import View
from vramtop.tui.widgets.gpu_table import find_gpu
from vramtop.tui.widgets.text_panel import TextPanel

EVENTS_SHOWN = 4  # newest first; the rest are counted
NVLINK_NAMES = {"crc_flit": "CRC flit", "crc_data": "CRC data"}
NOT_READ = "not read (no NVML, or no health metrics from its exporter)"


def events_of(gpu: GpuReading, events: Iterable[HealthEvent]) -> list[HealthEvent]:
    """The events of one GPU, by UUID where both have one, else by index on this machine."""
    out = []
    for e in events:
        if e.gpu_uuid is not None and gpu.uuid is not None:
            if e.gpu_uuid == gpu.uuid:
                out.append(e)
        elif gpu.host is None and e.gpu_index == gpu.index:
            out.append(e)
    return out


def event_word(e: HealthEvent) -> str:
    if e.kind == "xid" and e.code is not None:
        return f"XID {e.code}"
    return {"ecc_dbe": "ECC DBE", "ecc_sbe": "ECC SBE", "gpu_lost": "lost"}.get(e.kind, e.kind)


class _Line:
    """Builds one section: ``label  part · part``, an unknown part as ``name – reason``."""

    def __init__(self, out: Text, p: Palette, label: str, newline: bool = True) -> None:
        self.out, self.p, self.first = out, p, True
        out.append(("\n" if newline else "") + label + " ", p.dim)

    def sep(self) -> None:
        if not self.first:
            self.out.append(" · ", self.p.dim)
        self.first = False

    def part(self, text: str, style: Style | None = None, name: str = "") -> None:
        self.sep()
        if name:
            self.out.append(name + " ", self.p.dim)
        self.out.append(text, style or self.p.text)

    def unknown(self, name: str, reason: str | None) -> None:
        self.sep()
        self.out.append(f"{name} – " if name else "– ", self.p.dim)
        self.out.append(clean.literal(reason or "not read"), self.p.dim)


def _reason(h: GpuHealth, *fields: str) -> str | None:
    """The reason the fields are unknown, when they share one."""
    reasons = {h.unavailable.get(f) for f in fields}
    return reasons.pop() if len(reasons) == 1 else "; ".join(sorted(r for r in reasons if r))


def _count(value: int | None, unit: str) -> str:
    return f"{value:,} {unit}" if value is not None else fmt.NA


def _yes(value: bool | None) -> str:
    return fmt.NA if value is None else ("yes" if value else "no")


def health_text(view: View, g: GpuReading) -> Text:
    """The Health section's text (from its first line: findings or why nothing is known)."""
    p = view.palette
    out = Text(no_wrap=False)
    out.append("Health ", p.accent)
    found = health.findings(g, view.frame.events, view.frame.time)
    h = g.health
    if found:
        for i, (word, severity) in enumerate(found):
            out.append(" · " if i else "", p.dim)
            out.append(word, p.severity(severity))
    elif h is None:
        out.append("–", p.dim)
    else:
        out.append("ok", p.severity("ok"))
    if h is None:
        if g.state == "ok":  # a lost GPU says so above, with its reason
            out.append("  " + NOT_READ, p.dim)
    else:
        _clocks(_Line(out, p, "  Clocks", newline=False), h)
    # Events before the counters: a short screen cuts the section from the bottom.
    _events(out, p, events_of(g, view.frame.events))
    if h is not None:
        _fields(out, p, h)
    return out


def _clocks(line: _Line, h: GpuHealth) -> None:
    p = line.p
    if h.throttle_reasons is None:
        line.unknown("throttle", h.unavailable.get("throttle_reasons"))
    elif h.throttle_reasons:
        line.part(", ".join(h.throttle_reasons), p.warn, "throttled:")
    else:
        line.part("not throttled")
    if h.performance_state is None:
        line.unknown("P-state", h.unavailable.get("performance_state"))
    else:
        line.part(f"P{h.performance_state}", name="P-state")
    if h.ecc_mode is None:
        line.unknown("ECC", h.unavailable.get("ecc_mode"))
    else:
        line.part("on" if h.ecc_mode else "off", name="ECC")


def _fields(out: Text, p: Palette, h: GpuHealth) -> None:
    line = _Line(out, p, "ECC errors")
    for name, cor, unc in (
        ("volatile", "ecc_corrected_volatile", "ecc_uncorrected_volatile"),
        ("aggregate", "ecc_corrected_aggregate", "ecc_uncorrected_aggregate"),
    ):
        c, u = getattr(h, cor), getattr(h, unc)
        if c is None and u is None:
            line.unknown(name, _reason(h, cor, unc))
            continue
        line.part(f"{_count(c, 'corrected')}, ", name=name)
        out.append(_count(u, "uncorrected"), p.bad if u else p.text)

    line = _Line(out, p, "Memory")
    retired = ("retired_pages_sbe", "retired_pages_dbe", "retired_pages_pending")
    if all(getattr(h, f) is None for f in retired):
        line.unknown("retired pages", _reason(h, *retired))
    else:
        line.part(
            f"{_count(h.retired_pages_sbe, 'single-bit')}, "
            f"{_count(h.retired_pages_dbe, 'double-bit')}, pending {_yes(h.retired_pages_pending)}",
            p.warn if h.retired_pages_pending else None,
            "retired pages",
        )
    remap = (
        "remapped_rows_correctable",
        "remapped_rows_uncorrectable",
        "remapped_rows_pending",
        "remapped_rows_failure",
    )
    if all(getattr(h, f) is None for f in remap):
        line.unknown("remapped rows", _reason(h, *remap))
    else:
        role = p.bad if h.remapped_rows_failure else p.warn if h.remapped_rows_pending else None
        line.part(
            f"{_count(h.remapped_rows_correctable, 'correctable')}, "
            f"{_count(h.remapped_rows_uncorrectable, 'uncorrectable')}, "
            f"pending {_yes(h.remapped_rows_pending)}, failed {_yes(h.remapped_rows_failure)}",
            role,
            "remapped rows",
        )

    line = _Line(out, p, "PCIe")
    gen, gen_max = h.pcie_link_gen, h.pcie_link_gen_max
    if gen is None:
        line.unknown("link gen", h.unavailable.get("pcie_link_gen"))
    else:
        line.part(f"gen{gen}" + ("" if gen_max is None else f" of {gen_max}"), name="link")
    width, width_max = h.pcie_link_width, h.pcie_link_width_max
    if width is None:
        line.unknown("width", h.unavailable.get("pcie_link_width"))
    else:
        narrow = width_max is not None and width < width_max
        line.part(
            f"x{width}" + ("" if width_max is None else f" of x{width_max}"),
            p.warn if narrow else None,
            "width",
        )
    if h.pcie_replay_count is None:
        line.unknown("replays", h.unavailable.get("pcie_replay_count"))
    else:
        line.part(_count(h.pcie_replay_count, "replays"))
    for name, value, field in (
        ("TX", h.pcie_tx_bytes_per_second, "pcie_tx_bytes_per_second"),
        ("RX", h.pcie_rx_bytes_per_second, "pcie_rx_bytes_per_second"),
    ):
        if value is None:
            line.unknown(name, h.unavailable.get(field))
        else:
            line.part(units.size(value) + "/s", name=name)

    line = _Line(out, p, "NVLink")
    if h.nvlink_links is None and h.nvlink_errors is None:
        line.unknown("", _reason(h, "nvlink_links", "nvlink_errors"))
    else:
        if h.nvlink_links is None:
            line.unknown("links", h.unavailable.get("nvlink_links"))
        else:
            line.part(_count(h.nvlink_links, "links"))
        if h.nvlink_errors is None:
            line.unknown("errors", h.unavailable.get("nvlink_errors"))
        else:
            for key, value in h.nvlink_errors.items():
                line.part(f"{value:,}", p.warn if value else None, NVLINK_NAMES.get(key, key))


def _events(out: Text, p: Palette, events: list[HealthEvent]) -> None:
    out.append("\nEvents ", p.dim)
    if not events:
        out.append("none seen since vramtop started", p.dim)
        return
    newest = events[::-1][:EVENTS_SHOWN]
    for i, e in enumerate(newest):
        out.append("\n  " if i else "", p.dim)
        out.append(fmt.time_of_day(e.time) + " ", p.dim)
        style = p.severity(e.severity)
        out.append(event_word(e), style)
        if e.meaning and e.meaning != event_word(e):
            out.append(" " + clean.literal(e.meaning), style)
    if len(events) > EVENTS_SHOWN:
        out.append(f"  (+{len(events) - EVENTS_SHOWN} earlier)", p.dim)


class GpuHealthPanel(TextPanel):
    DEFAULT_CSS = "GpuHealthPanel { height: auto; }"

    def __init__(self, index: int, *, id: str | None = None) -> None:
        super().__init__(Text(), id=id)
        self.index = index

    def show(self, view: View) -> None:
        gpu = find_gpu(view.frame.gpus, self.index)
        self.set_text(health_text(view, gpu) if gpu is not None else Text())
