"""The Frame: an immutable snapshot of everything vramtop knows at one instant.

Every panel and every export reads a Frame and nothing else. A value that could not be read is
``None`` and, where the reason is known, the reason sits in the reading's ``unavailable`` map:
a missing value is never shown as 0.
"""

from __future__ import annotations

import shlex
from dataclasses import field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Literal

from vramtop.records import record

SourceState = Literal["ok", "stale", "error", "disabled"]
LOCAL_SOURCES = ("host", "nvml")  # this machine's own sources; the rest are remote
GpuState = Literal["ok", "lost"]

# A read-only empty mapping shared by readings with nothing unavailable.
NOTHING_UNAVAILABLE: MappingProxyType[str, str] = MappingProxyType({})


def freeze(reasons: dict[str, str]) -> MappingProxyType[str, str]:
    return MappingProxyType(dict(reasons)) if reasons else NOTHING_UNAVAILABLE


@record
class SourceStatus:
    """How one source fared: ``detail`` is one sentence a person can act on."""

    name: str
    state: SourceState
    detail: str = ""
    since: float | None = None  # for "stale": time of the last good reading


@record
class HostReading:
    """A machine: this one (psutil), or a fleet host seen through Prometheus or a scrape.

    ``instance`` is the host's key in a fleet (vramtop.fleet.host_key: the instance label or
    URL without its port); ``up`` is None where nobody asked (this machine), False when its
    exporter did not answer, with ``detail`` saying why."""

    hostname: str
    cpu_percent: float | None = None
    cpu_count: int | None = None
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    load_average: tuple[float, float, float] | None = None
    disk_path: str = "/"
    disk_used_bytes: int | None = None
    disk_total_bytes: int | None = None
    unavailable: MappingProxyType[str, str] = field(default_factory=lambda: NOTHING_UNAVAILABLE)
    instance: str | None = None
    up: bool | None = None
    last_seen: float | None = None  # epoch seconds of its last good answer
    detail: str = ""


@record
class ProcessReading:
    """A process holding GPU memory, as NVML reported it plus what psutil could add."""

    pid: int
    gpu_index: int
    used_memory_bytes: int | None
    kind: str = "compute"  # compute, graphics or compute+graphics
    user: str | None = None
    name: str | None = None
    command: str | None = None
    model: str | None = None
    model_source: str | None = None
    # Why user/name/command are missing (process gone, other PID namespace, no permission).
    detail: str | None = None
    mig_device: str | None = None
    # Per-process use: SM and memory-controller % (NVML samples since the last refresh), host
    # CPU % (of one core) and resident memory, start time (epoch s). None: see ``unavailable``.
    sm_percent: float | None = None
    memory_controller_percent: float | None = None
    cpu_percent: float | None = None
    rss_bytes: int | None = None
    started_at: float | None = None
    unavailable: MappingProxyType[str, str] = field(default_factory=lambda: NOTHING_UNAVAILABLE)


@record
class MigReading:
    """A MIG instance of a GPU: its own UUID and memory."""

    uuid: str
    gpu_instance_id: int | None
    memory_used_bytes: int | None
    memory_total_bytes: int | None


@record
class GpuReading:
    """One GPU as a source saw it: memory, load, health and the processes on it."""

    index: int
    uuid: str | None
    name: str | None
    state: GpuState = "ok"
    memory_used_bytes: int | None = None
    memory_total_bytes: int | None = None
    memory_reserved_bytes: int | None = None
    utilization_percent: float | None = None
    memory_utilization_percent: float | None = None
    temperature_c: float | None = None
    power_watts: float | None = None
    power_limit_watts: float | None = None
    mig_mode: bool | None = None
    mig_devices: tuple[MigReading, ...] = ()
    processes: tuple[ProcessReading, ...] = ()
    unavailable: MappingProxyType[str, str] = field(default_factory=lambda: NOTHING_UNAVAILABLE)
    host: str | None = None  # None: this machine (NVML); else the exporter's host, via Prometheus
    health: GpuHealth | None = None  # None: nobody read it (a remote GPU without health metrics)

    @property
    def memory_fraction(self) -> float | None:
        if self.memory_used_bytes is None or not self.memory_total_bytes:
            return None
        return self.memory_used_bytes / self.memory_total_bytes


@record
class GpuHealth:
    """Why a GPU slows down or fails. Counts are totals since boot (volatile) or over the GPU's
    life (aggregate); a field the GPU does not support is None with its reason in
    ``unavailable``.

    ``throttle_reasons``: NVML's clock event reasons as words (see vramtop.health.THROTTLE_WORDS),
    ``()`` when clocks run free. ``nvlink_errors``: per counter (replay, recovery, crc_flit,
    crc_data) the total over all links; ``nvlink_links`` how many links the GPU has."""

    throttle_reasons: tuple[str, ...] | None = None
    performance_state: int | None = None  # P0 = 0 (fastest) .. P15
    ecc_mode: bool | None = None
    ecc_corrected_volatile: int | None = None
    ecc_uncorrected_volatile: int | None = None
    ecc_corrected_aggregate: int | None = None
    ecc_uncorrected_aggregate: int | None = None
    retired_pages_sbe: int | None = None  # pre-Ampere: page retirement
    retired_pages_dbe: int | None = None
    retired_pages_pending: bool | None = None
    remapped_rows_correctable: int | None = None  # Ampere and newer: row remapping
    remapped_rows_uncorrectable: int | None = None
    remapped_rows_pending: bool | None = None
    remapped_rows_failure: bool | None = None
    pcie_replay_count: int | None = None
    pcie_link_gen: int | None = None
    pcie_link_gen_max: int | None = None
    pcie_link_width: int | None = None
    pcie_link_width_max: int | None = None
    pcie_tx_bytes_per_second: int | None = None
    pcie_rx_bytes_per_second: int | None = None
    nvlink_links: int | None = None
    nvlink_errors: MappingProxyType[str, int] | None = None
    unavailable: MappingProxyType[str, str] = field(default_factory=lambda: NOTHING_UNAVAILABLE)


@record
class HealthEvent:
    """Something that happened to a GPU at one moment: an XID error, an ECC error, a GPU that
    fell off the bus. ``kind``: xid, ecc_sbe, ecc_dbe or gpu_lost; ``code``: the XID number;
    ``severity``: critical, warning or info."""

    time: float
    gpu_uuid: str | None
    gpu_index: int | None
    kind: str
    code: int | None = None
    meaning: str = ""
    severity: str = "warning"


@record
class InstanceFigures:
    """One replica's share of a model: its figures on one fleet host (vramtop.fleet.host_key).
    Several servers of the model on one host add up (VRAM, queue, rate; p95 is the worst)."""

    instance: str
    vram_bytes: int | None = None
    latency_p95_seconds: float | None = None
    queue_length: float | None = None
    requests_per_second: float | None = None


@record
class ModelReading:
    """One model: VRAM from its processes (NVML) or its server, serving figures from PromQL or a
    direct scrape. Any figure may be None; ``unavailable`` says why where it is known."""

    name: str
    vram_bytes: int | None
    processes: tuple[int, ...] = ()
    gpus: tuple[int, ...] = ()
    sources: tuple[str, ...] = ()  # how its processes were attributed
    latency_p50_seconds: float | None = None
    latency_p95_seconds: float | None = None
    latency_p99_seconds: float | None = None
    requests_per_second: float | None = None
    error_ratio: float | None = None  # errors / requests over the rate window, 0..1
    queue_length: float | None = None
    instances: tuple[str, ...] = ()  # hosts (Prometheus instance labels) serving it
    profile: str | None = None  # the profile whose metrics filled it (vllm, triton, ...)
    # Server-specific figures, e.g. ttft_p95_seconds, kv_cache_usage_ratio, preemptions_per_second.
    extras: MappingProxyType[str, float] = field(default_factory=lambda: NOTHING_UNAVAILABLE)
    unavailable: MappingProxyType[str, str] = field(default_factory=lambda: NOTHING_UNAVAILABLE)
    by_instance: tuple[InstanceFigures, ...] = ()  # per fleet host, sorted by instance


# The numeric figures of a ModelReading: what history keeps and what two sources can fill in.
MODEL_FIGURES = (
    "vram_bytes",
    "latency_p50_seconds",
    "latency_p95_seconds",
    "latency_p99_seconds",
    "requests_per_second",
    "error_ratio",
    "queue_length",
)


@record
class AlertReading:
    """A Prometheus or Alertmanager alert, a critical NVML finding, or a local rule's alert
    (vramtop.local_rules). ``state``: firing or pending; ``silenced`` covers Alertmanager's
    silenced and inhibited; ``runbook_url``: the ``runbook_url`` annotation (http/https only)."""

    name: str
    severity: str
    state: str
    summary: str = ""
    labels: MappingProxyType[str, str] = field(default_factory=lambda: NOTHING_UNAVAILABLE)
    active_since: float | None = None
    silenced: bool = False
    source: str = "prometheus"  # prometheus, alertmanager, nvml or local
    runbook_url: str | None = None


@record
class SilenceMatcher:
    """One matcher of an Alertmanager silence: ``name`` = ``value`` (``is_regex``: a fully
    anchored regex; ``is_equal`` False: the negation, != or !~)."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True

    @property
    def op(self) -> str:
        return (
            ("=~" if self.is_regex else "=") if self.is_equal else ("!~" if self.is_regex else "!=")
        )

    @property
    def text(self) -> str:
        """As the silence form and the exports write it: ``name=~value``, the value as is."""
        return f"{self.name}{self.op}{self.value}"


@record
class SilenceReading:
    """An active Alertmanager silence. Times are epoch seconds."""

    id: str
    matchers: tuple[SilenceMatcher, ...] = ()
    created_by: str = ""
    comment: str = ""
    starts_at: float | None = None
    ends_at: float | None = None


@record
class Frame:
    """Everything one refresh saw: the only thing screens, exports and recordings read."""

    time: float
    host: HostReading
    gpus: tuple[GpuReading, ...] = ()
    models: tuple[ModelReading, ...] = ()
    alerts: tuple[AlertReading, ...] = ()
    sources: tuple[SourceStatus, ...] = ()
    hosts: tuple[HostReading, ...] = ()  # hosts seen through Prometheus (node_exporter)
    driver_version: str | None = None
    demo: bool = False
    events: tuple[HealthEvent, ...] = ()  # recent GPU health events, oldest first (bounded)
    silences: tuple[SilenceReading, ...] = ()  # active Alertmanager silences (bounded)

    @property
    def iso_time(self) -> str:
        return iso_utc(self.time)

    def source(self, name: str) -> SourceStatus | None:
        return next((s for s in self.sources if s.name == name), None)


def iso_utc(epoch: float) -> str:
    """ISO-8601 in UTC with a ``Z``, to the second: what incident notes want."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


SEVERITY_RANK = {"critical": 0, "page": 0, "error": 1, "high": 1, "warning": 2, "info": 3}


def alert_order(a: AlertReading) -> tuple:
    """Firing before pending, then by severity, then oldest first."""
    return (
        a.state != "firing",
        SEVERITY_RANK.get(a.severity.lower(), 4),
        a.active_since if a.active_since is not None else float("inf"),
        a.name,
    )


@record
class ProcInfo:
    """What the host says about a GPU process (psutil): the input of attribution. ``argv`` is
    already masked (vramtop.redact); ``detail`` says why something could not be read."""

    pid: int
    user: str | None = None
    name: str | None = None
    argv: tuple[str, ...] = ()
    container: str | None = None
    ancestors: tuple[tuple[int, tuple[str, ...]], ...] = ()  # (pid, argv), nearest first
    detail: str | None = None

    @property
    def command(self) -> str | None:
        return shlex.join(self.argv) if self.argv else None
