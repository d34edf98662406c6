"""A Frame as titled tables: the one layout that the text and Markdown exports both draw."""

from __future__ import annotations

from vramtop import clean, serving, units
from vramtop.export import fmt, hosts
from vramtop.export import health as gpu_health
from vramtop.export.layout import (
    COMMAND_WIDTH,
    DETAIL_WIDTH,
    MODEL_WIDTH,
    NAME_WIDTH,
    VRAM_CRITICAL,
    Cell,
    Table,
    c,
    note,
)
from vramtop.fleet import Rules
from vramtop.model import Frame, GpuReading, HostReading, SilenceReading
from vramtop.silencing import matched_alerts, silenced


def title_of(frame: Frame) -> str:
    parts = ["vramtop", clean.shorten(frame.host.hostname, NAME_WIDTH), frame.iso_time]
    if frame.driver_version:
        parts.append(f"driver {clean.shorten(frame.driver_version, 24)}")
    if frame.demo:
        parts.append("DEMO (simulated host)")
    return " · ".join(parts)


def tables(frame: Frame, rules: Rules | None = None) -> list[Table]:
    out = [_host(frame)]
    if fleet := hosts.shown(frame, rules):
        out.append(hosts.hosts_table(fleet))
    out += [_gpus(frame), _processes(frame), _models(frame)]
    if serving_table := _serving(frame):
        out.append(serving_table)
    if replicated := hosts.replicated(frame):
        out.append(hosts.replicas_table(replicated, rules))
    out.append(_alerts(frame))
    if gpu_health.shown(frame):
        out.append(gpu_health.events_table(frame))
    if muting := silenced(frame):
        out.append(_silences(frame, muting))
    return [*out, _sources(frame)]


def _host_cells(h: HostReading) -> tuple[Cell, ...]:
    load = " ".join(fmt.fixed(x, 2) for x in h.load_average) if h.load_average else fmt.NA
    cpu = fmt.pct(h.cpu_percent, 1) + (f" of {h.cpu_count} cores" if h.cpu_count else "")
    return (
        c(clean.shorten(h.hostname, NAME_WIDTH)),
        c(cpu),
        c(fmt.used_of(h.memory_used_bytes, h.memory_total_bytes)),
        c(load),
        c(fmt.used_of(h.disk_used_bytes, h.disk_total_bytes)),
    )


_HOST_HEADERS = ("Host", "CPU", "Memory", "Load 1/5/15")


def _host(frame: Frame) -> Table:
    h = frame.host
    table = Table("Host", (*_HOST_HEADERS, f"Disk {clean.shorten(h.disk_path, 40)}"))
    table.rows.append(_host_cells(h))
    table.notes += [note(f"{k}: {clean.literal(v)}") for k, v in h.unavailable.items()]
    return table


def _gpus(frame: Frame) -> Table:
    table = Table(
        "GPUs",
        (
            "#",
            "Name",
            "UUID",
            "Memory used / total",
            "Util",
            "Temp",
            "Power",
            "MIG",
            "State",
            "Health",
        ),
        empty="no GPUs",
    )
    for g in frame.gpus:
        share = g.memory_fraction
        mem_style = "bad" if share is not None and share > VRAM_CRITICAL else None
        table.rows.append(
            (
                c(g.index if g.host is None else f"{clean.shorten(g.host, NAME_WIDTH)}/{g.index}"),
                c(clean.shorten(g.name or fmt.NA, NAME_WIDTH)),
                c(clean.shorten(g.uuid or fmt.NA, NAME_WIDTH), "dim"),
                c(fmt.used_of(g.memory_used_bytes, g.memory_total_bytes), mem_style),
                c(fmt.pct(g.utilization_percent)),
                c(fmt.num(g.temperature_c, " C")),
                c(fmt.power(g.power_watts, g.power_limit_watts)),
                c(fmt.mig(g.mig_mode)),
                c(
                    g.state.upper() if g.state != "ok" else "ok",
                    "bad" if g.state != "ok" else "good",
                ),
                gpu_health.cell(g, frame),
            )
        )
    table.notes += _missing(frame.gpus)
    for g in frame.gpus:
        for m in g.mig_devices:
            used = fmt.used_of(m.memory_used_bytes, m.memory_total_bytes)
            table.notes.append(
                f"{gpu_health.gpu_label(g)} MIG {clean.shorten(m.uuid, NAME_WIDTH)}: {used}"
            )
        table.notes += gpu_health.notes(g, frame)
    return table


def _missing(gpus: tuple[GpuReading, ...]) -> list[str]:
    """Why a figure is missing, one line per figure and reason whatever the number of GPUs
    it holds for: a fleet's exporters lack the same fields on thousands of GPUs."""
    grouped: dict[tuple[str, str], list[GpuReading]] = {}
    for g in gpus:
        for key, reason in g.unavailable.items():
            grouped.setdefault((key, reason), []).append(g)
    return [
        note(f"{_which_gpus(which)} {key}: {clean.literal(reason)}")
        for (key, reason), which in grouped.items()
    ]


def _which_gpus(which: list[GpuReading]) -> str:
    if len(which) == 1:
        return gpu_health.gpu_label(which[0])
    names = [gpu_health.gpu_label(g).removeprefix("GPU ") for g in which]
    if len(names) <= 4:
        return f"GPUs {', '.join(names)}"
    return f"{len(names)} GPUs ({names[0]} … {names[-1]})"


def _processes(frame: Frame) -> Table:
    table = Table(
        "Processes",
        (
            "GPU",
            "PID",
            "User",
            "Name",
            "VRAM",
            "SM %",
            "Mem %",
            "CPU %",
            "RSS",
            "Age",
            "Model",
            "Via",
            "Command",
        ),
        empty="no GPU processes",
    )
    for g in frame.gpus:
        for p in sorted(g.processes, key=lambda p: -(p.used_memory_bytes or 0)):
            command = clean.shorten(p.command, COMMAND_WIDTH) if p.command else fmt.NA
            table.rows.append(
                (
                    c(g.index),
                    c(p.pid),
                    c(clean.shorten(p.user or fmt.NA, 24)),
                    c(clean.shorten(p.name, 24)),
                    c(fmt.human_bytes(p.used_memory_bytes)),
                    c(fmt.pct(p.sm_percent)),
                    c(fmt.pct(p.memory_controller_percent)),
                    c(fmt.pct(p.cpu_percent, 1)),
                    c(fmt.human_bytes(p.rss_bytes)),
                    c(_age(p.started_at, frame.time)),
                    c(clean.shorten(p.model, 40) if p.model else "-"),
                    c(p.model_source or "-", "dim"),
                    c(
                        command if not p.detail else f"{command} ({clean.literal(p.detail)})",
                        "dim" if p.detail else None,
                        DETAIL_WIDTH,
                    ),
                )
            )
    table.notes += _use_notes(frame)
    return table


_USE = {
    "sm_percent": "SM %",
    "memory_controller_percent": "Mem %",
    "cpu_percent": "CPU %",
    "rss_bytes": "RSS",
    "started_at": "Age",
}


def _use_notes(frame: Frame) -> list[str]:
    """Why a process figure is n/a, once per reason: the same old driver says it for all."""
    pids: dict[tuple[str, str], list[str]] = {}
    for g in frame.gpus:
        for p in g.processes:
            for key, label in _USE.items():
                if getattr(p, key) is None and key in p.unavailable:
                    pids.setdefault((label, p.unavailable[key]), []).append(str(p.pid))
    out = []
    for (label, reason), which in pids.items():
        more = f" and {len(which) - 3} more" if len(which) > 3 else ""
        listed = ", ".join(which[:3]) + more
        out.append(note(f"{label} n/a for PID {listed}: {clean.literal(reason)}"))
    return out


def _age(started_at: float | None, now: float) -> str:
    return fmt.NA if started_at is None else units.age(now - started_at)


def _models(frame: Frame) -> Table:
    table = Table(
        "Models",
        ("Model", "VRAM", "p50", "p95", "p99", "Req/s", "Errors", "Queue", "Hosts", "PIDs", "GPUs"),
        empty="no models identified",
    )
    means = False
    for m in frame.models:
        hosts = ", ".join(clean.literal(i) for i in m.instances) or "-"
        p95 = fmt.seconds(m.latency_p95_seconds)
        if m.latency_p95_seconds is None and (mean := serving.stand_in(m.extras, P95)):
            p95, means = serving.fmt(*mean), True
        table.rows.append(
            (
                c(clean.shorten(m.name, MODEL_WIDTH)),
                c(fmt.human_bytes(m.vram_bytes)),
                c(fmt.seconds(m.latency_p50_seconds)),
                c(p95),
                c(fmt.seconds(m.latency_p99_seconds)),
                c(fmt.num(m.requests_per_second, digits=1)),
                c(fmt.pct(None if m.error_ratio is None else m.error_ratio * 100, 2)),
                c(fmt.num(m.queue_length)),
                c(clean.shorten(hosts, 40)),
                c(" ".join(str(p) for p in m.processes) or "-"),
                c(" ".join(str(i) for i in m.gpus) or "-"),
            )
        )
    if means:
        table.notes.append(serving.MEAN_LEGEND)
    return table


P95 = "latency_p95_seconds"


def _serving(frame: Frame) -> Table | None:
    """LLM serving figures per model, with units (vramtop.serving): only the figures some
    model has, only the models that have any; then why each missing one is missing."""
    keys = serving.present(frame.models)
    if not keys:
        return None
    table = Table("Serving", ("Model", *(serving.label(k) for k in keys)))
    for m in frame.models:
        if not m.extras:
            continue
        cells = (serving.fmt(k, m.extras.get(k)) for k in keys)
        table.rows.append((c(clean.shorten(m.name, MODEL_WIDTH)), *(c(x) for x in cells)))
        for key, why in m.unavailable.items():
            figure = key.removeprefix("extras.")
            if key == P95 or (key.startswith("extras.") and figure in serving.BY_KEY):
                what = "p95" if key == P95 else serving.label(figure)
                name = clean.shorten(m.name, MODEL_WIDTH)
                table.notes.append(note(f"{name}: {what}: {clean.literal(why)}"))
    if any(serving.BY_KEY[k].mean for k in keys if k in serving.BY_KEY):
        table.notes.insert(0, serving.MEAN_LEGEND)
    return table


def _alerts(frame: Frame) -> Table:
    table = Table(
        "Alerts", ("State", "Severity", "Alert", "Source", "Since", "Summary"), empty="no alerts"
    )
    for a in frame.alerts:
        state = a.state + (" (silenced)" if a.silenced else "")
        style = "dim" if a.silenced else ("bad" if a.state == "firing" else "warn")
        since = fmt.time_of_day(a.active_since) if a.active_since else fmt.NA
        table.rows.append(
            (
                c(state, style),
                c(clean.shorten(a.severity, 16)),
                c(clean.shorten(a.name, 40)),
                c(clean.shorten(a.source, 24)),
                c(since),
                c(clean.shorten(a.summary, 80) if a.summary else "-"),
            )
        )
    return table


def _silences(frame: Frame, muting: list[SilenceReading]) -> Table:
    """Active silences that mute a firing alert: what, until when, who and why."""
    table = Table("Silences", ("Until", "Matchers", "By", "Comment", "Mutes"))
    for s in muting:
        names = sorted({a.name for a in matched_alerts(s, frame.alerts)})
        table.rows.append(
            (
                c(fmt.date_time(s.ends_at)),
                c(clean.shorten(", ".join(m.text for m in s.matchers), 80)),
                c(clean.shorten(s.created_by, 24)),
                c(clean.shorten(s.comment, 60)),
                c(clean.shorten(", ".join(names), 60)),
            )
        )
    return table


def _sources(frame: Frame) -> Table:
    table = Table("Sources", ("Source", "Status", "Detail"))
    for s in frame.sources:
        state = s.state
        if s.state == "stale" and s.since is not None:
            state = f"stale since {fmt.time_of_day(s.since)}"
        style = {"ok": "good", "stale": "warn", "error": "bad", "disabled": "dim"}[s.state]
        detail = c(clean.literal(s.detail) or "-", None, DETAIL_WIDTH)
        table.rows.append((c(s.name), c(state, style), detail))
    return table
