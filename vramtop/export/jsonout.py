"""The stable JSON document, ``schema: vramtop/1`` (see vramtop/schemas/vramtop-1.schema.json).

Bytes are integers; a value that could not be read is null, and its reason is under
``unavailable``. Fields are only ever added within one schema version.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from vramtop import health
from vramtop.export.hosts import shown
from vramtop.fleet import HostRow, Rules
from vramtop.model import (
    Frame,
    GpuHealth,
    GpuReading,
    HealthEvent,
    HostReading,
    InstanceFigures,
    ModelReading,
    ProcessReading,
    SilenceReading,
    iso_utc,
)
from vramtop.silencing import matched_alerts, silenced

SCHEMA = "vramtop/1"
MAX_INT = 2**63 - 1
_COUNTS = {"error_ratio", "cpu_count", "gpu_count", "alerts_firing"}  # never below zero, as *_bytes


def document(frame: Frame, rules: Rules | None = None) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "time": frame.iso_time,
        "demo": frame.demo,
        "host": _host(frame.host),
        "hosts": [_fleet_host(r) for r in shown(frame, rules)],
        "driver_version": frame.driver_version,
        "gpus": [_gpu(g, frame) for g in frame.gpus],
        "models": [
            {
                "name": m.name,
                "vram_bytes": m.vram_bytes,
                "processes": list(m.processes),
                "gpus": list(m.gpus),
                "model_sources": list(m.sources),
                "latency_p50_seconds": m.latency_p50_seconds,
                "latency_p95_seconds": m.latency_p95_seconds,
                "latency_p99_seconds": m.latency_p99_seconds,
                "requests_per_second": m.requests_per_second,
                "error_ratio": m.error_ratio,
                "queue_length": m.queue_length,
                "instances": list(m.instances),
                "by_instance": [_replica(m, f) for f in m.by_instance],
                "profile": m.profile,
                "extras": dict(m.extras),
                "unavailable": dict(m.unavailable),
            }
            for m in frame.models
        ],
        "alerts": [
            {
                "name": a.name,
                "severity": a.severity,
                "state": a.state,
                "summary": a.summary,
                "labels": dict(a.labels),
                "active_since": iso_utc(a.active_since) if a.active_since else None,
                "silenced": a.silenced,
                "source": a.source,
                "runbook_url": a.runbook_url,
            }
            for a in frame.alerts
        ],
        "events": [_event(e) for e in frame.events],
        "silences": [_silence(s, frame) for s in silenced(frame)],
        "sources": [
            {
                "name": s.name,
                "status": s.state,
                "detail": s.detail,
                "since": iso_utc(s.since) if s.since is not None else None,
            }
            for s in frame.sources
        ],
    }


def _silence(s: SilenceReading, frame: Frame) -> dict[str, Any]:
    return {
        "id": s.id,
        "matchers": [
            {"name": m.name, "value": m.value, "is_regex": m.is_regex, "is_equal": m.is_equal}
            for m in s.matchers
        ],
        "created_by": s.created_by,
        "comment": s.comment,
        "starts_at": _iso(s.starts_at),
        "ends_at": _iso(s.ends_at),
        "alerts": [
            {"name": a.name, "labels": dict(a.labels)} for a in matched_alerts(s, frame.alerts)
        ],
    }


def _host(h: HostReading) -> dict[str, Any]:
    return {
        "name": h.hostname,
        "cpu_percent": h.cpu_percent,
        "cpu_count": h.cpu_count,
        "memory_used_bytes": h.memory_used_bytes,
        "memory_total_bytes": h.memory_total_bytes,
        "load_average": list(h.load_average) if h.load_average else None,
        "disk_path": h.disk_path,
        "disk_used_bytes": h.disk_used_bytes,
        "disk_total_bytes": h.disk_total_bytes,
        "unavailable": dict(h.unavailable),
    }


def _fleet_host(r: HostRow) -> dict[str, Any]:
    """A host row: its reading (CPU, memory, disk) where one is known, then its fleet figures."""
    reading = r.reading or HostReading(hostname=r.instance, instance=r.instance)
    return {
        **_host(reading),
        "instance": r.instance,
        "up": r.up,
        "last_seen": _iso(r.last_seen),
        "detail": r.detail,
        "gpu_count": r.gpu_count,
        "gpu_memory_used_bytes": r.gpu_memory_used_bytes,
        "gpu_memory_total_bytes": r.gpu_memory_total_bytes,
        "utilization_mean_percent": r.utilization_mean_percent,
        "utilization_max_percent": r.utilization_max_percent,
        "models": list(r.models),
        "alerts_firing": r.alerts_firing,
    }


_REPLICA_FIGURES = ("vram_bytes", "latency_p95_seconds", "queue_length", "requests_per_second")


def _replica(m: ModelReading, f: InstanceFigures) -> dict[str, Any]:
    """One host's share of a model; a figure it lacks is null with the model's reason for it."""
    figures = {k: getattr(f, k) for k in _REPLICA_FIGURES}
    reasons = {k: m.unavailable[k] for k, v in figures.items() if v is None and k in m.unavailable}
    return {"instance": f.instance, **figures, "unavailable": reasons}


def _iso(epoch: float | None) -> str | None:
    if epoch is None or not math.isfinite(epoch):
        return None
    try:
        return iso_utc(epoch)
    except (ValueError, OverflowError, OSError):  # a time no calendar holds
        return None


def _gpu(g: GpuReading, frame: Frame) -> dict[str, Any]:
    return {
        "index": g.index,
        "host": g.host,
        "uuid": g.uuid,
        "name": g.name,
        "state": g.state,
        "memory_used_bytes": g.memory_used_bytes,
        "memory_total_bytes": g.memory_total_bytes,
        "memory_reserved_bytes": g.memory_reserved_bytes,
        "utilization_percent": g.utilization_percent,
        "memory_utilization_percent": g.memory_utilization_percent,
        "temperature_c": g.temperature_c,
        "power_watts": g.power_watts,
        "power_limit_watts": g.power_limit_watts,
        "mig_mode": g.mig_mode,
        "mig_devices": [
            {
                "uuid": m.uuid,
                "gpu_instance_id": m.gpu_instance_id,
                "memory_used_bytes": m.memory_used_bytes,
                "memory_total_bytes": m.memory_total_bytes,
            }
            for m in g.mig_devices
        ],
        "processes": [_process(p) for p in g.processes],
        "health": _health(g, frame),
        "unavailable": dict(g.unavailable),
    }


_HEALTH_FIELDS = tuple(
    f.name for f in dataclasses.fields(GpuHealth) if f.name not in ("unavailable", "nvlink_errors")
)


def _health(g: GpuReading, frame: Frame) -> dict[str, Any] | None:
    """Every GpuHealth field, the Health column's word and severity; null where nobody read it
    (a remote GPU without health metrics)."""
    h = g.health
    if h is None:
        return None
    word, severity = health.finding(g, frame.events, frame.time)
    out: dict[str, Any] = {"finding": word, "severity": severity}
    for name in _HEALTH_FIELDS:
        value = getattr(h, name)
        out[name] = list(value) if isinstance(value, tuple) else value
    out["nvlink_errors"] = None if h.nvlink_errors is None else dict(h.nvlink_errors)
    out["unavailable"] = dict(h.unavailable)
    return out


def _event(e: HealthEvent) -> dict[str, Any]:
    return {
        "time": _iso(e.time),
        "epoch": e.time if math.isfinite(e.time) else None,
        "gpu_uuid": e.gpu_uuid,
        "gpu_index": e.gpu_index,
        "kind": e.kind,
        "code": e.code,
        "meaning": e.meaning,
        "severity": e.severity,
    }


def _process(p: ProcessReading) -> dict[str, Any]:
    return {
        "pid": p.pid,
        "user": p.user,
        "name": p.name,
        "command": p.command,
        "used_memory_bytes": p.used_memory_bytes,
        "kind": p.kind,
        "model": p.model,
        "model_source": p.model_source,
        "mig_device": p.mig_device,
        "detail": p.detail,
        "sm_percent": p.sm_percent,
        "memory_controller_percent": p.memory_controller_percent,
        "cpu_percent": p.cpu_percent,
        "rss_bytes": p.rss_bytes,
        "started_at": _iso(p.started_at),
        "unavailable": dict(p.unavailable),
    }


def render(frame: Frame, rules: Rules | None = None) -> str:
    # ASCII-only: a C1 control in a label cannot reach a terminal that cats the file.
    # Strict JSON: allow_nan=False is the proof that _strict left no NaN or Infinity.
    return json.dumps(_strict(document(frame, rules)), indent=2, allow_nan=False) + "\n"


def _strict(value: Any, reasons: dict[str, str] | None = None, key: str = "") -> Any:
    """NaN, ±Inf and integers beyond 64 bits become null, with the reason in the nearest
    ``unavailable`` map: strict parsers reject the first, and no byte count is the second."""
    if isinstance(value, float) and not math.isfinite(value):
        if reasons is not None:
            reasons.setdefault(key, f"not a finite number ({value})")
        return None
    if isinstance(value, int) and not isinstance(value, bool) and not -MAX_INT <= value <= MAX_INT:
        if reasons is not None:
            reasons.setdefault(key, f"a {value.bit_length()}-bit integer, beyond any count")
        return None
    if (key.endswith("_bytes") or key in _COUNTS) and isinstance(value, int | float) and value < 0:
        if reasons is not None:
            reasons.setdefault(key, f"{value} is below zero, not a possible value")
        return None
    if isinstance(value, dict):
        own = value.get("unavailable")
        inner = own if isinstance(own, dict) else reasons
        out = {}
        for k, v in value.items():
            if k == "unavailable":
                out[k] = v  # the same dict: reasons added below still reach the output
                continue
            where = k if inner is own else f"{key}.{k}".lstrip(".")
            kept = _strict(v, inner, where)
            if kept is not None or inner is own or v is None:
                out[k] = kept  # a map of figures (extras) leaves out what it cannot hold
        return out
    if isinstance(value, list):
        if any(isinstance(v, float) and not math.isfinite(v) for v in value):
            if reasons is not None:  # a list of numbers (load average) is null as a whole
                reasons.setdefault(key, "not finite numbers")
            return None
        return [_strict(v, reasons, key) for v in value]
    return value
