"""A GPU's health in a word, and the findings that are alerts. Pure: reads readings, no I/O
beyond the package's XID table.

``finding(gpu, events, now)`` is what a Health column shows: ``ok`` or the worst finding, with
its severity (critical, warning, info). ``critical_alerts(frame)`` turns the critical ones into
alerts from the ``nvml`` source, so they reach the Alerts panel without Prometheus.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from types import MappingProxyType

from vramtop.model import AlertReading, Frame, GpuHealth, GpuReading, HealthEvent
from vramtop.records import record

# NVML clock event (throttle) reason bits -> the words GpuHealth.throttle_reasons holds.
THROTTLE_WORDS: tuple[tuple[int, str], ...] = (
    (0x1, "idle"),
    (0x2, "applications_clocks"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal"),
    (0x40, "hw_thermal"),
    (0x80, "hw_power_brake"),
    (0x100, "display_clocks"),
    (0x200, "board_limit"),
    (0x400, "reliability"),
)

SEVERITY_ORDER = ("critical", "warning", "info")
OK = ("ok", "ok")
UNKNOWN = ("–", "unknown")  # nothing read: no health fields, no events
# A non-critical XID colours the row this long; a critical one for as long as it is kept.
EVENT_WINDOW = 600.0
# Below this utilisation a PCIe link may downshift its generation to save power: not a finding.
LOAD_PERCENT = 20.0


def decode_throttle(mask: int) -> tuple[str, ...]:
    """Reason bits as words, in bit order; unknown bits as ``0x...``."""
    words = [word for bit, word in THROTTLE_WORDS if mask & bit]
    rest = mask & ~sum(bit for bit, _ in THROTTLE_WORDS)
    if rest:
        words.append(f"{rest:#x}")
    return tuple(words)


@record
class XidInfo:
    """What an XID code means, how bad it is, and whether it is critical."""

    meaning: str
    severity: str
    critical: bool


@cache
def xid_table() -> MappingProxyType[int, XidInfo]:
    """vramtop/data/xid.toml: XID number -> meaning, severity, critical."""
    import tomllib  # on the first XID: a start without one pays for no TOML parser
    from importlib import resources

    text = resources.files("vramtop").joinpath("data/xid.toml").read_text(encoding="utf-8")
    table = {}
    for key, row in tomllib.loads(text).items():
        if row["severity"] not in SEVERITY_ORDER:
            raise ValueError(f"xid.toml: XID {key} has an unknown severity {row['severity']!r}")
        table[int(key)] = XidInfo(str(row["meaning"]), row["severity"], bool(row["critical"]))
    return MappingProxyType(table)


def xid_info(code: int) -> XidInfo:
    return xid_table().get(code) or XidInfo(f"XID {code}", "warning", False)


def event_is_critical(event: HealthEvent) -> bool:
    if event.kind == "xid":
        return event.code is not None and xid_info(event.code).critical
    return event.kind in ("ecc_dbe", "gpu_lost")


def _same_gpu(event: HealthEvent, gpu: GpuReading) -> bool:
    if event.gpu_uuid is not None and gpu.uuid is not None:
        return event.gpu_uuid == gpu.uuid
    return gpu.host is None and event.gpu_index == gpu.index


def findings(
    gpu: GpuReading, events: Iterable[HealthEvent] = (), now: float | None = None
) -> list[tuple[str, str]]:
    """Every finding of one GPU, worst first: (word, severity)."""
    out: list[tuple[int, str, str]] = []  # (rank, word, severity): rank orders within severity

    def add(rank: int, word: str, severity: str) -> None:
        out.append((SEVERITY_ORDER.index(severity) * 100 + rank, word, severity))

    if gpu.state == "lost":
        add(0, "lost", "critical")
    for e in events:
        if not _same_gpu(e, gpu):
            continue
        critical = event_is_critical(e)
        if not critical and now is not None and now - e.time > EVENT_WINDOW:
            continue
        if e.kind == "xid" and e.code is not None:
            add(1, f"XID {e.code}", "critical" if critical else e.severity)
        elif e.kind == "ecc_dbe":
            add(2, "ECC DBE", "critical")
        elif e.kind == "gpu_lost":
            add(0, "lost", "critical")
    h = gpu.health
    if h is not None:
        _health_findings(gpu, h, add)
    out.sort()
    unique: dict[str, str] = {}
    for _, word, severity in out:
        unique.setdefault(word, severity)  # the worst of a word's occurrences comes first
    return list(unique.items())


def _health_findings(gpu: GpuReading, h: GpuHealth, add: Callable[[int, str, str], None]) -> None:
    if h.ecc_uncorrected_volatile:
        add(2, "ECC DBE", "critical")
    if h.remapped_rows_failure:
        add(3, "remap fail", "critical")
    if h.remapped_rows_pending:
        add(0, "remap pending", "warning")
    if h.retired_pages_pending:
        add(1, "retire pending", "warning")
    reasons = h.throttle_reasons or ()
    if "hw_thermal" in reasons or "sw_thermal" in reasons:
        add(3, "thermal", "warning")
    if "hw_power_brake" in reasons:
        add(4, "pwr-brake", "warning")
    if "hw_slowdown" in reasons:
        add(5, "hw-slow", "warning")
    width, width_max = h.pcie_link_width, h.pcie_link_width_max
    if width is not None and width_max is not None and width < width_max:
        add(6, f"PCIe x{width}", "warning")
    if h.pcie_link_gen is not None and h.pcie_link_gen_max is not None:
        loaded = gpu.utilization_percent is not None and gpu.utilization_percent >= LOAD_PERCENT
        if loaded and h.pcie_link_gen < h.pcie_link_gen_max:
            add(7, f"PCIe gen{h.pcie_link_gen}", "warning")
    if "sw_power_cap" in reasons:
        add(0, "pwr-cap", "info")


def finding(
    gpu: GpuReading, events: Iterable[HealthEvent] = (), now: float | None = None
) -> tuple[str, str]:
    """The Health cell: ``("ok", "ok")``, the worst finding, or ``("–", "unknown")`` when
    nothing about the GPU's health was read."""
    found = findings(gpu, events, now)
    if found:
        return found[0]
    if gpu.health is None:
        return UNKNOWN
    return OK


def critical_alerts(frame: Frame) -> tuple[AlertReading, ...]:
    """Critical findings as firing alerts from the ``nvml`` source: a critical XID, an
    uncorrectable ECC error, a row-remap failure, a lost GPU. One alert per GPU and cause."""
    alerts: dict[tuple, AlertReading] = {}

    def fire(gpu: GpuReading, name: str, summary: str, since: float | None, **extra: str) -> None:
        key = (gpu.host, gpu.index, name, tuple(extra.items()))
        if key in alerts:
            old = alerts[key]
            if since is None or (old.active_since is not None and old.active_since <= since):
                return
        labels = {"gpu": str(gpu.index), "uuid": gpu.uuid or ""}
        if gpu.host is not None:
            labels["instance"] = gpu.host
        labels.update(extra)
        alerts[key] = AlertReading(
            name=name,
            severity="critical",
            state="firing",
            summary=f"GPU {gpu.index}: {summary}",
            labels=MappingProxyType(labels),
            active_since=since,
            source="nvml",
        )

    for gpu in frame.gpus:
        mine = [e for e in frame.events if _same_gpu(e, gpu) and event_is_critical(e)]
        if gpu.state == "lost" or any(e.kind == "gpu_lost" for e in mine):
            since = min((e.time for e in mine if e.kind == "gpu_lost"), default=None)
            fire(gpu, "GpuLost", "fell off the bus or needs a reset", since)
        for e in mine:
            if e.kind == "xid" and e.code is not None:
                fire(gpu, "GpuXid", f"XID {e.code}, {e.meaning}", e.time, xid=str(e.code))
            elif e.kind == "ecc_dbe":
                fire(gpu, "GpuEccUncorrectable", "uncorrectable (double-bit) ECC error", e.time)
        h = gpu.health
        if h is not None and h.ecc_uncorrected_volatile:
            fire(
                gpu,
                "GpuEccUncorrectable",
                f"{h.ecc_uncorrected_volatile} uncorrectable ECC errors since boot",
                None,
            )
        if h is not None and h.remapped_rows_failure:
            fire(gpu, "GpuRowRemapFailure", "row remapping failed: the GPU needs service", None)
    return tuple(alerts.values())
