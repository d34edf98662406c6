"""The fleet in the one-shot exports: which hosts are listed, and the Hosts and Replicas tables.

Host figures come from vramtop.fleet.host_rows only, the same rows the Hosts screen draws.
"""

from __future__ import annotations

from vramtop import clean
from vramtop.export import fmt
from vramtop.export.layout import MODEL_WIDTH, NAME_WIDTH, VRAM_CRITICAL, Cell, Table, c, note
from vramtop.fleet import HostRow, Rules, Worst, host_rows, target_of
from vramtop.model import Frame, InstanceFigures, ModelReading

MODELS_WIDTH = 60  # the names of a host's models, together
WORST_MODEL_WIDTH = 32  # the model named beside its p95 or queue


def shown(frame: Frame, rules: Rules | None = None) -> list[HostRow]:
    """The host rows to list: every row in a fleet; on one machine only a remote host (a
    plain local box lists none, as before the fleet)."""
    rules = rules or Rules()
    rows = host_rows(frame, rules.p95_target, rules.host_label)
    return rows if len(rows) > 1 else [r for r in rows if not r.local]


def hosts_table(rows: list[HostRow]) -> Table:
    table = Table(
        "Hosts",
        (
            "Host",
            "State",
            "GPUs",
            "VRAM used / total",
            "Util mean/max",
            "Models",
            "Worst p95",
            "Longest queue",
            "Alerts firing",
            "CPU",
            "Memory",
        ),
    )
    for r in rows:
        name = clean.shorten(r.instance, NAME_WIDTH)
        share = r.memory_fraction
        h = r.reading
        cpu = fmt.NA
        if h is not None:
            cpu = fmt.pct(h.cpu_percent, 1) + (f" of {h.cpu_count} cores" if h.cpu_count else "")
        table.rows.append(
            (
                c(name),
                _state(r),
                c(r.gpu_count),
                c(
                    fmt.used_of(r.gpu_memory_used_bytes, r.gpu_memory_total_bytes),
                    "bad" if share is not None and share > VRAM_CRITICAL else None,
                ),
                c(_util(r)),
                c(clean.shorten(", ".join(r.models), MODELS_WIDTH) if r.models else "-"),
                _worst_p95(r),
                _worst(r.longest_queue, fmt.num),
                c(r.alerts_firing, "bad" if r.alerts_firing else None),
                c(cpu),
                c(fmt.used_of(h.memory_used_bytes, h.memory_total_bytes) if h else fmt.NA),
            )
        )
        if not r.up and r.detail:
            table.notes.append(note(f"{name}: {clean.literal(r.detail)}"))
    return table


def _util(r: HostRow) -> str:
    mean, top = r.utilization_mean_percent, r.utilization_max_percent
    return fmt.NA if mean is None and top is None else f"{fmt.pct(mean)} / {fmt.pct(top)}"


def _state(r: HostRow) -> Cell:
    if r.up:
        return c("up", "good")
    seen = f" (last seen {fmt.time_of_day(r.last_seen)})" if r.last_seen is not None else ""
    return c(f"DOWN{seen}", "bad")


def _worst(w: Worst | None, show) -> Cell:  # type: ignore[no-untyped-def]
    if w is None:
        return c("-")
    return c(f"{clean.shorten(w.model, WORST_MODEL_WIDTH)} {show(w.value)}")


def _worst_p95(r: HostRow) -> Cell:
    w = r.worst_p95
    if w is None or not r.over_target:
        return _worst(w, fmt.seconds)
    past = f" ({fmt.fixed(w.ratio, 1)}x target)"
    return c(f"{clean.shorten(w.model, WORST_MODEL_WIDTH)} {fmt.seconds(w.value)}{past}", "bad")


_REPLICA_FIGURES = {
    "vram_bytes": "VRAM",
    "latency_p95_seconds": "p95",
    "queue_length": "Queue",
    "requests_per_second": "Req/s",
}


def replicated(frame: Frame) -> list[ModelReading]:
    return [m for m in frame.models if len(m.by_instance) > 1]


def replicas_table(models: list[ModelReading], rules: Rules | None = None) -> Table:
    target = (rules or Rules()).p95_target
    table = Table("Replicas", ("Model", "Host", *_REPLICA_FIGURES.values()))
    for m in models:
        name = clean.shorten(m.name, MODEL_WIDTH)
        for f in m.by_instance:
            host = c(clean.shorten(f.instance, NAME_WIDTH))
            table.rows.append((c(name), host, *_figures(f, target_of(target, m.name))))
        for key, label in _REPLICA_FIGURES.items():
            reason = m.unavailable.get(key)
            if reason and any(getattr(f, key) is None for f in m.by_instance):
                table.notes.append(note(f"{name} {label}: {clean.literal(reason)}"))
    return table


def _figures(f: InstanceFigures, target: float | None) -> tuple[Cell, ...]:
    p95 = f.latency_p95_seconds
    slow = p95 is not None and target is not None and p95 > target
    return (
        c(fmt.human_bytes(f.vram_bytes)),
        c(fmt.seconds(p95), "bad" if slow else None),
        c(fmt.num(f.queue_length)),
        c(fmt.num(f.requests_per_second, digits=1)),
    )
