"""The live overview as plain text at a terminal's size: the status line, then the GPUs,
Models, Processes (on a tall terminal), Alerts and Host & sources panels in rounded boxes,
with the live view's titles, columns, order and heights (vramtop/tui/vramtop.tcss). The
first paint draws it before Textual is imported; sources still being asked say so."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence

from vramtop import clean, serving, units
from vramtop.export import fmt
from vramtop.export.columns import (
    ALERT_COLUMNS,
    PADDING,
    PROCESS_COLUMNS,
    Col,
    auto_columns,
    fit_columns,
    gpu_spec,
    model_spec,
)
from vramtop.export.overview import (
    Row,
    alert_rank,
    alert_row,
    gpu_row,
    model_row,
    ordered,
    p95_of,
    process_age,
    process_row,
)
from vramtop.model import LOCAL_SOURCES, Frame

MIN_WIDTH, MIN_HEIGHT = 80, 24  # below this the live view alone draws the screen
TALL = 40  # rows from which the overview also lists processes (tui.screens.overview)
ALERT_SOURCES = ("alerts", "alertmanager")
_MARK = {"ok": "●", "stale": "▲", "error": "✗", "disabled": "○"}


def fits(width: int, height: int) -> bool:
    return width >= MIN_WIDTH and height >= MIN_HEIGHT


def overview(
    frame: Frame,
    width: int,
    height: int,
    *,
    loading: Iterable[str] = (),
    interval: float = 1.0,
    model_columns: tuple[str, ...] | None = None,
    local_rules: bool = False,
) -> list[str]:
    """``height`` lines of exactly ``width`` columns. ``loading``: the sources not answered
    yet; their panels say so. The last line (the live view's key bar) is left blank."""
    waiting = tuple(loading)
    tall = height >= TALL
    gpus = _gpus(frame, width)
    models = _models(frame, width, model_columns, waiting)
    alerts = _alerts(frame, width - width // 2, waiting, local_rules)
    host = _host(frame, width // 2, waiting)
    gpus_h = min(len(gpus.rows) + 3, int(height * 0.45))
    models_h = min(len(models.rows) + 3, int(height * 0.4)) if tall else 0
    # The bottom row takes what it needs up to 40 %, short of the list above it's minimum 5.
    bottom = max(max(4, len(alerts.rows) + 3), len(host.rows) + 2)
    bottom_h = min(bottom, int(height * 0.4), max(0, height - 2 - gpus_h - models_h - 5))
    rest = height - 2 - gpus_h - models_h - bottom_h
    out = [status_line(frame, width, interval), *gpus.draw(width, gpus_h)]
    if tall:
        out += models.draw(width, models_h)
        out += _processes(frame, width).draw(width, rest)
    else:
        out += models.draw(width, rest)
    left = alerts.draw(width - width // 2, min(bottom_h, max(4, len(alerts.rows) + 3)))
    right = host.draw(width // 2, min(bottom_h, len(host.rows) + 2))
    left += [" " * (width - width // 2)] * (bottom_h - len(left))
    right += [" " * (width // 2)] * (bottom_h - len(right))
    out += [a + b for a, b in zip(left, right, strict=False)][:bottom_h]
    out = out[: height - 1]
    return out + [" " * width] * (height - len(out))


class Panel:
    """A rounded box: title on the top border, subtitle on the bottom, ``rows`` inside."""

    def __init__(self, title: str, rows: Sequence[str], subtitle: str = "", pad: int = 0) -> None:
        self.title, self.rows, self.subtitle, self.pad = title, list(rows), subtitle, pad
        self.head: str | None = None  # a table's header line, above the rows

    def draw(self, width: int, height: int) -> list[str]:
        inner = width - 2
        top = "╭─ " + clean.cut(self.title, max(0, width - 5)) + " "
        top += "─" * (width - 1 - clean.width(top)) + "╮"
        body = ([self.head] if self.head is not None else []) + self.rows
        pad = " " * self.pad
        lines = [top]
        for i in range(height - 2):
            text = pad + body[i] + pad if i < len(body) else ""
            lines.append("│" + fit(text, inner) + "│")
        sub = f" {clean.cut(self.subtitle, max(0, inner - 4))} ─" if self.subtitle else ""
        lines.append("╰" + "─" * (inner - clean.width(sub)) + sub + "╯")
        return lines[:height] if height >= 2 else []


def fit(text: str, width: int, justify: str = "left") -> str:
    """Cut with an ellipsis when too long, else padded to ``width`` columns."""
    if width <= 0:
        return ""
    text = clean.cut(text, width)
    fill = " " * (width - clean.width(text))
    return fill + text if justify == "right" else text + fill


class TablePanel(Panel):
    """A live table: the columns that fit the width, a header with the sort arrow."""

    def __init__(self, name: str, spec: tuple[Col, ...], width: int, sort: str, down: bool):
        super().__init__("", [])
        self.layout = fit_columns(spec, max(10, width - 3))  # borders, and the scrollbar's cell
        self.name, self.sort, self.down = name, sort, down

    def width_of(self, key: str, default: int = 10) -> int:
        return next((w for c, w in self.layout if c.key == key), default)

    def fill(self, rows: list[Row], subtitle: str = "") -> Panel:
        arrow = "▼" if self.down else "▲"
        labels = {c.key: c.label + (arrow if c.key == self.sort else "") for c, _ in self.layout}
        self.head = self._line(labels)
        self.rows = [self._line(r) for r in rows]
        label = next((c.label.strip() for c, _ in self.layout if c.key == self.sort), self.sort)
        self.title = f"{self.name} ({len(rows)}) · sort {label}{arrow}"
        self.subtitle = subtitle
        return self

    def _line(self, cells: Row) -> str:
        pad = " " * PADDING
        return "".join(pad + fit(cells.get(c.key, ""), w, c.justify) + pad for c, w in self.layout)


def _gpus(frame: Frame, width: int) -> Panel:
    spans = len({g.host for g in frame.gpus}) > 1
    table = TablePanel("GPUs", gpu_spec(spans), width, "index", False)
    bar_w, spark_w = table.width_of("bar"), table.width_of("spark")
    gpus = ordered(list(frame.gpus), lambda g: (g.host or "", g.index), False)
    rows = []
    for g in gpus:
        total = g.memory_total_bytes
        recent = [g.memory_used_bytes / total] if total and g.memory_used_bytes is not None else []
        rows.append(gpu_row(g, frame, bar_w, spark_w, recent))
    nvml = frame.source("nvml")
    sub = nvml.detail if not frame.gpus and nvml is not None and nvml.detail else ""
    panel = table.fill(rows, sub)
    if frame.demo:
        panel.title += " · DEMO: simulated"
    return panel


def _models(
    frame: Frame, width: int, columns: tuple[str, ...] | None, waiting: Sequence[str]
) -> Panel:
    keys = columns or auto_columns(frame.models)
    spec = model_spec(keys)
    table = TablePanel("Models", spec, width, "vram", True)
    models = ordered(list(frame.models), lambda m: m.vram_bytes, True)
    sub = "" if frame.models else "no models identified yet"
    if "p95" in keys and any(
        m.latency_p95_seconds is None and p95_of(m)[0] is not None for m in models
    ):
        sub = serving.MEAN_LEGEND
    if [n for n in waiting if n not in (*LOCAL_SOURCES, *ALERT_SOURCES, "silences")]:
        sub = "serving figures loading…"
    return table.fill([model_row(m) for m in models], sub)


def _processes(frame: Frame, width: int) -> Panel:
    table = TablePanel("Processes", PROCESS_COLUMNS, width, "vram", True)
    procs = [p for g in frame.gpus for p in g.processes]
    procs = ordered(procs, lambda p: p.used_memory_bytes, True)
    return table.fill([process_row(p, process_age(p, frame.time)) for p in procs])


def _alerts(frame: Frame, width: int, waiting: Sequence[str], local_rules: bool) -> Panel:
    table = TablePanel("Alerts", ALERT_COLUMNS, width, "state", False)
    alerts = ordered(list(frame.alerts), lambda a: alert_rank(a, frame.time), False)
    panel = table.fill([alert_row(a, frame.time) for a in alerts])
    firing = sum(1 for a in frame.alerts if a.state == "firing" and not a.silenced)
    panel.title = f"Alerts ({firing} firing)" if frame.alerts else "Alerts"
    if any(n in ALERT_SOURCES for n in waiting):
        panel.subtitle = "loading…"
    elif frame.alerts:
        panel.subtitle = ""
    elif any(s.name in ALERT_SOURCES for s in frame.sources):
        panel.subtitle = "none firing"
    elif local_rules:
        panel.subtitle = "none firing (local rules only)"
    else:
        panel.subtitle = "no alert source configured"
    return panel


def _host(frame: Frame, width: int, waiting: Sequence[str]) -> Panel:
    h = frame.host
    load = " ".join(fmt.fixed(x, 1) for x in h.load_average) if h.load_average else fmt.NA
    cpu = f"CPU {fmt.pct(h.cpu_percent)}" + (f" of {h.cpu_count}" if h.cpu_count else "")
    disk = clean.literal(h.disk_path) + " " if h.disk_path != "/" else ""
    mem = _used(h.memory_used_bytes, h.memory_total_bytes)
    text = [
        f"{cpu}  Load {load}",
        f"Mem {mem}  Disk {disk}{_used(h.disk_used_bytes, h.disk_total_bytes)}",
    ]
    healthy, trouble = [], []
    for s in frame.sources:
        if s.state in ("ok", "disabled"):
            word = " ok" if s.state == "ok" else " off"
            healthy.append(f"{_MARK[s.state]} {clean.literal(s.name)}{word}")
        else:
            detail = ": " + clean.literal(s.detail) if s.detail else ""
            trouble.append(f"{_MARK.get(s.state, '?')} {clean.literal(s.name)} {s.state}{detail}")
    healthy += [f"◌ {clean.literal(n)} loading…" for n in waiting]
    room = max(1, width - 4)  # the panel wraps long lines at spaces, as Rich does
    lines = [*text, *(["  ".join(healthy)] if healthy else []), *trouble]
    folded = [part for line in lines for part in textwrap.wrap(line, room) or [""]]
    return Panel("Host & sources", folded, pad=1)


def _used(used: int | None, total: int | None) -> str:
    """``31% of 1.0T``: what fits a narrow panel; the snapshot has the exact figures."""
    if used is None or not total:
        return units.used_of(used, total, units.COMPACT)
    return f"{fmt.pct(used / total * 100)} of {units.size(total, units.COMPACT)}"


def status_line(frame: Frame, width: int, interval: float) -> str:
    """The top line: host and driver on the left, the frame's time and the interval right."""
    short = " vramtop  " + (" DEMO  " if frame.demo else "") + clean.literal(frame.host.hostname)
    short += " (simulated)" if frame.demo else ""
    left = short
    if frame.driver_version:
        left += "  driver " + clean.literal(frame.driver_version)
    right = f"{fmt.time_of_day(frame.time)}  every {units.interval(interval)} "
    if len(left) + len(right) > width:
        left = short
    if len(right) > width - 12:
        right = right[: max(0, width - 12)]
    room = width - len(right)
    return fit(left[:room], room) + right
