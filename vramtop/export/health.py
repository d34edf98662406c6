"""GPU health in the text-like exports: the Health cell, a detail note per GPU that is not ok,
and the Events table. Words and severities come from vramtop.health only."""

from __future__ import annotations

from vramtop import clean, health
from vramtop.export import fmt
from vramtop.export.layout import NAME_WIDTH, Cell, Table, c, note
from vramtop.model import Frame, GpuHealth, GpuReading

STYLE = {"critical": "bad", "warning": "warn", "info": None, "ok": "good", "unknown": "dim"}


def cell(gpu: GpuReading, frame: Frame) -> Cell:
    word, severity = health.finding(gpu, frame.events, frame.time)
    return c(word, STYLE.get(severity))


def gpu_label(gpu: GpuReading) -> str:
    where = "" if gpu.host is None else f"{clean.shorten(gpu.host, 32)}/"
    return f"GPU {where}{gpu.index}"


def notes(gpu: GpuReading, frame: Frame) -> list[str]:
    """Where a GPU is not ok: its findings, then what its health fields say, and why the ones
    that matter are unknown."""
    found = health.findings(gpu, frame.events, frame.time)
    h = gpu.health
    if not found or h is None:
        return []
    who = gpu_label(gpu)
    out = [note(f"{who} health: " + ", ".join(f"{w} ({s})" for w, s in found))]
    out += [note(f"{who} {line}") for line in detail(h)]
    grouped: dict[str, list[str]] = {}  # one line per reason: PCIe's two fields say the same
    for field, reason in h.unavailable.items():
        grouped.setdefault(reason, []).append(field)
    out += [
        note(f"{who} {', '.join(fields)}: {clean.literal(reason)}")
        for reason, fields in grouped.items()
    ]
    return out


def _n(value: int | None) -> str:
    return fmt.NA if value is None else str(value)


def _lanes(value: int | None) -> str:
    return fmt.NA if value is None else f"x{value}"


def _flag(value: bool | None) -> str:
    return fmt.NA if value is None else ("yes" if value else "no")


def detail(h: GpuHealth) -> list[str]:
    """Every health field in a few lines, units written out."""
    reasons = fmt.NA if h.throttle_reasons is None else (", ".join(h.throttle_reasons) or "none")
    pstate = fmt.NA if h.performance_state is None else f"P{h.performance_state}"
    lines = [
        f"clocks held back by: {reasons}; performance state {pstate}",
        f"ECC {'on' if h.ecc_mode else 'off' if h.ecc_mode is False else fmt.NA}: "
        f"since boot {_n(h.ecc_corrected_volatile)} corrected, "
        f"{_n(h.ecc_uncorrected_volatile)} uncorrected; lifetime "
        f"{_n(h.ecc_corrected_aggregate)} corrected, {_n(h.ecc_uncorrected_aggregate)} uncorrected",
    ]
    if any(v is not None for v in (h.retired_pages_sbe, h.retired_pages_dbe)):
        lines.append(
            f"retired pages: {_n(h.retired_pages_sbe)} single-bit, "
            f"{_n(h.retired_pages_dbe)} double-bit, pending {_flag(h.retired_pages_pending)}"
        )
    lines.append(
        f"remapped rows: {_n(h.remapped_rows_correctable)} correctable, "
        f"{_n(h.remapped_rows_uncorrectable)} uncorrectable, pending "
        f"{_flag(h.remapped_rows_pending)}, failed {_flag(h.remapped_rows_failure)}"
    )
    link = f"gen {_n(h.pcie_link_gen)} of {_n(h.pcie_link_gen_max)}, "
    link += f"{_lanes(h.pcie_link_width)} of {_lanes(h.pcie_link_width_max)}"
    tx, rx = h.pcie_tx_bytes_per_second, h.pcie_rx_bytes_per_second
    through = ""
    if tx is not None or rx is not None:
        through = f", {fmt.human_bytes(tx)}/s out, {fmt.human_bytes(rx)}/s in"
    lines.append(f"PCIe {link}, {_n(h.pcie_replay_count)} replays{through}")
    if h.nvlink_errors is not None:
        errors = ", ".join(f"{k} {v}" for k, v in h.nvlink_errors.items()) or "none"
        lines.append(f"NVLink {_n(h.nvlink_links)} links, errors: {errors}")
    return lines


def shown(frame: Frame) -> bool:
    """The Events table is drawn where health was read at all, or something happened."""
    return bool(frame.events) or any(g.health is not None for g in frame.gpus)


def events_table(frame: Frame) -> Table:
    table = Table(
        "Events",
        ("Time", "GPU", "Kind", "Code", "Meaning", "Severity"),
        empty="no GPU health events",
    )
    for e in frame.events:
        where = fmt.NA if e.gpu_index is None else str(e.gpu_index)
        if e.gpu_uuid:
            where += f" {clean.shorten(e.gpu_uuid, NAME_WIDTH)}"
        table.rows.append(
            (
                c(fmt.time_of_day(e.time)),
                c(where),
                c(e.kind),
                c(fmt.NA if e.code is None else e.code),
                c(clean.shorten(e.meaning, 80) if e.meaning else "-"),
                c(e.severity, STYLE.get(e.severity)),
            )
        )
    return table
