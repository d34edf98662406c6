"""A Frame seen as a fleet: one row per host, and the Frame scoped to one host.

A host's key is where its readings meet: the ``instance`` label (or a scrape URL's address)
without its port, so a host's vLLM on :8000, its vramtop exporter on :19400 and its
node_exporter on :9100 are one host; or a label the user names (``host_label``). The Hosts
screen, the text/Markdown Hosts table and the JSON ``hosts[]`` all read ``host_rows``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import lru_cache
from types import MappingProxyType

from vramtop.model import (
    AlertReading,
    Frame,
    GpuReading,
    HostReading,
    InstanceFigures,
    ModelReading,
)
from vramtop.records import record

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "ip6-localhost"})
_PORT = re.compile(r"^(?P<host>\[[^\]]*\]|[^:]*):\d+$")


@lru_cache(maxsize=65536)  # the same instances every refresh, once per series
def host_key(instance: str | None) -> str | None:
    """``10.0.0.5:8000`` -> ``10.0.0.5``; ``[::1]:9100`` -> ``::1``; a URL -> its host. A key
    that has no port, or a bare IPv6 address, is returned as it is."""
    if not instance:
        return None
    text = instance.strip()
    if "://" in text:
        text = text.split("://", 1)[1].split("/", 1)[0].rsplit("@", 1)[-1]
    m = _PORT.match(text)
    if m:
        text = m.group("host")
    return text.removeprefix("[").removesuffix("]") or None


def this_machine(key: str | None, hostname: str) -> bool:
    """A target on this machine (loopback or its own name) is this machine, not a fleet host:
    ``--scrape http://127.0.0.1:8000/metrics`` on a GPU box is still one host."""
    return key is not None and (key.lower() in LOOPBACK or key == hostname)


def alert_host(alert: AlertReading, host_label: str | None = None) -> str | None:
    if host_label and alert.labels.get(host_label):
        return alert.labels[host_label]
    return host_key(alert.labels.get("instance"))


@record
class Worst:
    """A model's figure on a host, and how far it is past its target (value / target)."""

    model: str
    value: float
    ratio: float | None = None


@record
class HostRow:
    """One row of the Hosts screen and export: a host's figures, worst first."""

    instance: str  # the host's key
    local: bool  # this machine (NVML), not a fleet host
    up: bool  # False: its exporter did not answer (``detail`` says why)
    last_seen: float | None
    detail: str
    reading: HostReading | None  # CPU, memory... where node_exporter or psutil said
    gpu_count: int
    gpu_memory_used_bytes: int | None
    gpu_memory_total_bytes: int | None
    utilization_mean_percent: float | None
    utilization_max_percent: float | None
    models: tuple[str, ...]
    worst_p95: Worst | None
    longest_queue: Worst | None
    alerts_firing: int

    @property
    def memory_fraction(self) -> float | None:
        used, total = self.gpu_memory_used_bytes, self.gpu_memory_total_bytes
        return None if used is None or not total else used / total

    @property
    def over_target(self) -> bool:
        return bool(self.worst_p95 and self.worst_p95.ratio and self.worst_p95.ratio > 1)


DEFAULT_P95_TARGET = 0.1  # seconds: Targets.inference_p95_seconds's default
# One p95 target for every model, none, or one per model name (Targets.p95_for).
P95Target = float | Callable[[str], float | None] | None


def target_of(target: P95Target, model: str) -> float | None:
    return target(model) if callable(target) else target


@record
class Rules:
    """What the user set that shapes host rows: the p95 target (Targets.inference_p95_seconds)
    and the label naming a host (settings.host_label)."""

    p95_target: P95Target = DEFAULT_P95_TARGET
    host_label: str | None = None


def host_rows(
    frame: Frame, p95_target: P95Target = DEFAULT_P95_TARGET, host_label: str | None = None
) -> list[HostRow]:
    """Every host the Frame knows, worst first (see ``worst_first``). ``p95_target``: the
    latency a model's p95 is held against (Targets.inference_p95_seconds)."""
    local = frame.host.hostname
    readings: dict[str, HostReading] = {}
    for h in frame.hosts:
        key = h.instance or host_key(h.hostname) or h.hostname
        readings[key] = h
    gpus: dict[str, list[GpuReading]] = {}
    for g in frame.gpus:
        gpus.setdefault(_gpu_host(g, local), []).append(g)
    shares: dict[str, list[tuple[str, InstanceFigures]]] = {}
    for m in frame.models:
        for f in m.by_instance:
            shares.setdefault(f.instance, []).append((m.name, f))
    alerts: dict[str, int] = {}
    for a in frame.alerts:
        key = alert_host(a, host_label)
        if key and a.state == "firing" and not a.silenced:
            alerts[key] = alerts.get(key, 0) + 1
    keys = set(readings) | set(gpus) | set(shares)
    if local in gpus or not keys:
        keys.add(local)
    if local in readings:  # a target on this machine (a loopback --scrape): this machine
        r = readings[local]
        readings[local] = replace(frame.host, up=r.up, last_seen=r.last_seen, detail=r.detail)
    rows = [
        _row(
            key,
            key == local,
            frame,
            readings.get(key),
            gpus.get(key, []),
            shares.get(key, []),
            alerts.get(key, 0),
            p95_target,
        )
        for key in keys
    ]
    return worst_first(rows)


def is_fleet(frame: Frame) -> bool:
    return len(host_rows(frame)) > 1


def worst_first(rows: Iterable[HostRow]) -> list[HostRow]:
    """Down first, then firing alerts, then latency past its target, then by name."""
    return sorted(
        rows,
        key=lambda r: (
            r.up,
            -r.alerts_firing,
            -(r.worst_p95.ratio or 0) if r.over_target and r.worst_p95 else 0,
            r.instance,
        ),
    )


def _gpu_host(g: GpuReading, local: str) -> str:
    return local if g.host is None else (host_key(g.host) or g.host)


def _row(
    key: str,
    is_local: bool,
    frame: Frame,
    reading: HostReading | None,
    gpus: list[GpuReading],
    shares: list[tuple[str, InstanceFigures]],
    alerts: int,
    target: P95Target,
) -> HostRow:
    if is_local and reading is None:
        reading = frame.host
    used = [g.memory_used_bytes for g in gpus if g.memory_used_bytes is not None]
    total = [g.memory_total_bytes for g in gpus if g.memory_total_bytes is not None]
    util = [g.utilization_percent for g in gpus if g.utilization_percent is not None]
    names = {name for name, _ in shares}
    if is_local:
        names |= {m.name for m in frame.models if m.processes}
    p95 = []
    for name, f in shares:
        if f.latency_p95_seconds is not None:
            t = target_of(target, name)
            p95.append(Worst(name, f.latency_p95_seconds, f.latency_p95_seconds / t if t else None))
    queues = [Worst(name, f.queue_length) for name, f in shares if f.queue_length is not None]
    up = reading.up is not False if reading is not None else True
    last_seen = reading.last_seen if reading is not None else None
    if last_seen is None and up:
        last_seen = frame.time
    return HostRow(
        instance=key,
        local=is_local,
        up=up,
        last_seen=last_seen,
        detail=reading.detail if reading is not None else "",
        reading=reading,
        gpu_count=len(gpus),
        gpu_memory_used_bytes=sum(used) if used else None,
        gpu_memory_total_bytes=sum(total) if total else None,
        utilization_mean_percent=sum(util) / len(util) if util else None,
        utilization_max_percent=max(util) if util else None,
        models=tuple(sorted(names)),
        # the furthest past its own target (models may have different ones), then the slowest
        worst_p95=max(p95, key=lambda w: (w.ratio or 0, w.value), default=None),
        longest_queue=max(queues, key=lambda w: w.value, default=None),
        alerts_firing=alerts,
    )


def scope(frame: Frame, key: str, host_label: str | None = None) -> Frame:
    """The Frame as if vramtop ran on that host alone: its GPUs, its share of each model (VRAM,
    p95, queue and rate of that replica), its alerts. The overview draws it unchanged."""
    local = frame.host.hostname
    host = frame.host
    if key != local:
        host = next(
            (h for h in frame.hosts if (h.instance or host_key(h.hostname)) == key),
            HostReading(hostname=key, instance=key),
        )
    models = []
    for m in frame.models:
        share = next((f for f in m.by_instance if f.instance == key), None)
        if share is not None:
            models.append(_replica(m, share, key == local))
        elif key == local and m.processes:
            models.append(m)
    return replace(
        frame,
        host=host,
        hosts=(),
        gpus=tuple(g for g in frame.gpus if _gpu_host(g, local) == key),
        models=tuple(models),
        alerts=tuple(a for a in frame.alerts if alert_host(a, host_label) == key),
    )


_FLEET_ONLY = "per host only VRAM, p95, queue and rate are known; this figure is fleet-wide"


def _replica(m: ModelReading, f: InstanceFigures, here: bool) -> ModelReading:
    """``here``: the share on this machine, whose processes and GPUs (NVML's) it keeps."""
    reasons = dict(m.unavailable)
    for name in ("latency_p50_seconds", "latency_p99_seconds", "error_ratio"):
        reasons[name] = _FLEET_ONLY
    return replace(
        m,
        vram_bytes=f.vram_bytes,
        latency_p50_seconds=None,
        latency_p95_seconds=f.latency_p95_seconds,
        latency_p99_seconds=None,
        requests_per_second=f.requests_per_second,
        error_ratio=None,
        queue_length=f.queue_length,
        instances=(f.instance,),
        by_instance=(f,),
        processes=m.processes if here else (),
        gpus=m.gpus if here else (),
        sources=m.sources if here else (),
        unavailable=MappingProxyType(reasons),
    )
