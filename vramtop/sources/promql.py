"""Per-model latency, rates, queues and VRAM, remote GPUs and hosts, through PromQL.

Each refresh issues a fixed set of instant queries (see queries.py), concurrently, all at one
evaluation time and each bounded by the timeout. Profiles are picked by which metric names
exist (``auto``) or forced by name.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vramtop.model import GpuReading, HostReading, ModelReading, ProcessReading
from vramtop.profiles import Profile
from vramtop.sources.base import SourceError
from vramtop.sources.figures import model_from_figures
from vramtop.sources.http import Endpoint, QueryError, client, get_json
from vramtop.sources.pool import DaemonPool
from vramtop.sources.promapi import instant, matrix
from vramtop.sources.promql_syntax import instance_selector
from vramtop.sources.queries import Query, detect_query, field_queries, model_queries

DETECT_TTL = 60.0  # seconds between re-checks of which profiles have data
_TAG = "__vramtop_query"


@dataclass(frozen=True, slots=True)
class PromReading:
    models: tuple[ModelReading, ...] = ()
    gpus: tuple[GpuReading, ...] = ()
    hosts: tuple[HostReading, ...] = ()
    profiles: tuple[str, ...] = ()
    queries: int = 0
    note: str = ""


@dataclass(slots=True)
class _Answer:
    query: Query
    samples: list[tuple[dict[str, str], float | None]] = field(default_factory=list)
    error: str | None = None


class PromSource:
    name = "prometheus"

    def __init__(
        self,
        endpoint: Endpoint,
        profiles: Sequence[Profile],
        forced: bool = False,
        instance: str | None = None,
        window: str = "2m",
        clock: Callable[[], float] = time.time,
        max_series: int = 200_000,
    ) -> None:
        self.endpoint = endpoint
        self._max_series = max_series  # per query; more is an error naming the cap
        self._profiles = list(profiles)
        self._forced = forced
        self._sel = instance_selector(instance)
        self._window = window
        self._clock = clock
        self._http = client(endpoint)
        self._pool = DaemonPool(8, "vramtop-promql")
        self._active: list[Profile] = list(profiles) if forced else []
        self._detected_at = -math.inf
        self._profile_of: dict[str, Profile] = {}
        self._requests = 0
        self._cached_groups: tuple[tuple[str, ...] | None, list[list[Query]]] = (None, [])

    def close(self) -> None:
        self._pool.shutdown()
        self._http.close()

    # -- HTTP ------------------------------------------------------------------------------

    def _query(self, expr: str, at: float) -> list[tuple[dict[str, str], float | None]]:
        body = get_json(
            self._http,
            self.endpoint,
            "/api/v1/query",
            "Prometheus",
            data={"query": expr, "time": f"{at:.3f}", "timeout": f"{self.endpoint.timeout:g}s"},
        )
        samples = instant(body, self.endpoint, self._max_series)
        return [(labels, _number(value)) for labels, value in samples]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Any]:
        body = get_json(
            self._http,
            self.endpoint,
            "/api/v1/query_range",
            "Prometheus",
            data={"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"},
        )
        return matrix(body, self.endpoint)

    # -- polling ---------------------------------------------------------------------------

    def _detect(self, at: float) -> None:
        if self._forced or at - self._detected_at < DETECT_TTL:
            return
        samples = self._query(detect_query(self._profiles, self._sel), at)
        present = {labels.get("__name__") for labels, _ in samples}
        self._active = [p for p in self._profiles if present.intersection(p.detect)]
        self._detected_at = at

    def poll(self) -> PromReading:
        at = self._clock()
        self._detect(at)
        groups = self._groups()
        queries = [q for g in groups for q in g]
        self._requests = 0 if self._forced else 1
        answers = [a for g in self._pool.map(lambda g: self._batch(g, at), groups) for a in g]
        failed = [a for a in answers if a.error]
        transport = [a for a in failed if not a.error.startswith("!")]  # type: ignore[union-attr]
        if queries and len(transport) == len(queries):
            raise SourceError(transport[0].error or "Prometheus failed")
        note = ""
        if failed:
            first = failed[0].error.lstrip("!")  # type: ignore[union-attr]
            note = f"{len(failed)} of {len(queries)} queries failed: {first}"
        elif not self._active:
            note = "no known inference-server or GPU metrics found (see --profile)"
        by_profile = {p.name: p for p in self._active}
        models = _models(answers, by_profile)
        self._profile_of = {m.name: by_profile[m.profile] for m in models if m.profile}
        return PromReading(
            models=models,
            gpus=_gpus(answers, by_profile),
            hosts=_hosts(answers),
            profiles=tuple(p.name for p in self._active),
            queries=self._requests,
            note=note,
        )

    def backfill(self, model: str, window: float) -> dict[str, list[tuple[float, float]]]:
        """History of one model's figures, from the profile that reported it."""
        profile = self._profile_of.get(model)
        if profile is None:
            return {}
        return backfill(
            self.query_range, profile, model, window, self._clock(), self._sel, self._window
        )

    def _groups(self) -> list[list[Query]]:
        """Each active profile's queries; they change only when detection changes the set."""
        key = tuple(p.name for p in self._active)
        if self._cached_groups[0] != key:
            groups = [
                model_queries(p, self._sel, self._window)
                if p.kind == "model"
                else field_queries(p, self._sel, self._window)
                for p in self._active
            ]
            self._cached_groups = (key, groups)
        return self._cached_groups[1]

    def _batch(self, group: list[Query], at: float) -> list[_Answer]:
        """A profile's queries in ONE request: each tagged with label_replace and joined with
        ``or`` (the tag keeps ``or`` from dropping series), then split by the tag. HTTP and JSON
        cost far more than Prometheus's evaluation here. If Prometheus rejects the batch, the
        queries go one by one, so the note can say which failed."""
        self._requests += 1
        if len(group) == 1:
            return [self._answer(group[0], at)]
        expr = " or ".join(
            f'label_replace(({q.expr}), "{_TAG}", "{i}", "", "")' for i, q in enumerate(group)
        )
        try:
            samples = self._query(expr, at)
        except QueryError:
            self._requests += len(group)
            return [self._answer(q, at) for q in group]
        except SourceError as err:
            return [_Answer(q, error=err.reason) for q in group]
        answers = [_Answer(q) for q in group]
        for labels, value in samples:
            tag = labels.pop(_TAG, "")
            if tag.isdigit() and int(tag) < len(answers):
                answers[int(tag)].samples.append((labels, value))
        return answers

    def _answer(self, q: Query, at: float) -> _Answer:
        try:
            return _Answer(q, self._query(q.expr, at))
        except QueryError as err:
            return _Answer(q, error="!" + err.reason)  # "!" marks: server up, query refused
        except SourceError as err:
            return _Answer(q, error=err.reason)


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


# -- assembling readings ------------------------------------------------------------------------


def _models(answers: list[_Answer], profiles: dict[str, Profile]) -> tuple[ModelReading, ...]:
    figures: dict[str, dict[str, Any]] = defaultdict(dict)
    instances: dict[str, set[str]] = defaultdict(set)
    source: dict[str, str] = {}
    missing: dict[str, dict[str, str]] = defaultdict(dict)
    for a in answers:
        p = profiles[a.query.profile]
        if p.kind != "model":
            continue
        q = a.query
        per_model: dict[str, list[float]] = defaultdict(list)
        for labels, value in a.samples:
            name = labels.get(p.model_label)
            if name is None:
                continue
            source.setdefault(name, p.name)
            if "instance" in labels:
                instances[name].add(labels["instance"])
            if value is None or math.isinf(value):
                continue
            if q.key == "latency" and "quantile" in labels:
                figures[name][f"latency.{float(labels['quantile'])}"] = value * q.scale
                continue
            per_model[name].append(value * q.scale)
        for name, values in per_model.items():
            value = max(values) if q.combine == "max" else sum(values)
            key = f"{q.key}.{q.quantile}" if q.key == "latency" else q.key
            figures[name][key] = value
        if a.error:
            for name in figures:
                missing[name][q.key] = a.error.lstrip("!")
    return tuple(
        sorted(
            (
                model_from_figures(
                    name, f, source.get(name), tuple(sorted(instances[name])), missing[name]
                )
                for name, f in figures.items()
            ),
            key=lambda m: m.name,
        )
    )


def normalise_uuid(uuid: str | None) -> str | None:
    """``GPU-8A7F...``, ``gpu-8a7f...`` and nvidia_gpu_exporter's bare ``8a7f...`` are one GPU."""
    if not uuid:
        return None
    text = uuid.strip().lower()
    for prefix in ("gpu-", "mig-"):
        if text.startswith(prefix):
            return prefix.upper() + text[len(prefix) :]
    return "GPU-" + text


def _host_of(labels: dict[str, str], p: Profile) -> str:
    return next((labels[k] for k in p.host_labels if labels.get(k)), labels.get("instance", "?"))


def _gpus(answers: list[_Answer], profiles: dict[str, Profile]) -> tuple[GpuReading, ...]:
    gpus: dict[tuple[str, str], dict[str, Any]] = {}
    procs: dict[tuple[str, str], list[ProcessReading]] = defaultdict(list)
    for a in answers:
        p = profiles[a.query.profile]
        if p.kind != "gpu":
            continue
        by_metric = {f.metric: (key, f) for key, f in p.fields.items()}
        for labels, value in a.samples:
            uuid = normalise_uuid(labels.get(p.uuid_label or "uuid"))
            if uuid is None:
                continue
            key = (_host_of(labels, p), uuid)
            g = gpus.setdefault(key, {"profile": p.name})
            if p.name_label and labels.get(p.name_label):
                g["name"] = labels[p.name_label]
            if p.index_label and labels.get(p.index_label, "").isdigit():
                g["index"] = int(labels[p.index_label])
            if a.query.key == "gpu.processes":
                pid = labels.get(p.processes.get("pid_label", "pid"), "")
                if pid.isdigit():
                    used = None if value is None else int(value)
                    name = labels.get(p.processes.get("name_label", ""), None)
                    procs[key].append(ProcessReading(int(pid), -1, used, name=name))
                continue
            field_key, f = by_metric.get(labels.get("__name__", ""), (None, None))
            if field_key and value is not None and f is not None:
                g[field_key] = value * f.scale
    out = []
    for (host, uuid), g in sorted(gpus.items(), key=lambda kv: (kv[0][0], kv[1].get("index", 0))):
        index = int(g.get("index", 0))
        total = g.get("memory_total_bytes")
        if total is None and "memory_free_bytes" in g and "memory_used_bytes" in g:
            total = (
                g["memory_used_bytes"] + g["memory_free_bytes"] + g.get("memory_reserved_bytes", 0)
            )
        out.append(
            GpuReading(
                index=index,
                uuid=uuid,
                name=g.get("name"),
                host=host,
                memory_used_bytes=_int(g.get("memory_used_bytes")),
                memory_total_bytes=_int(total),
                memory_reserved_bytes=_int(g.get("memory_reserved_bytes")),
                utilization_percent=g.get("utilization_percent"),
                temperature_c=g.get("temperature_c"),
                power_watts=g.get("power_watts"),
                power_limit_watts=g.get("power_limit_watts"),
                processes=tuple(
                    ProcessReading(
                        pr.pid,
                        index,
                        pr.used_memory_bytes,
                        name=pr.name,
                        detail=f"seen through {g['profile']} on {host}",
                    )
                    for pr in procs[(host, uuid)]
                ),
            )
        )
    return tuple(out)


def _hosts(answers: list[_Answer]) -> tuple[HostReading, ...]:
    hosts: dict[str, dict[str, float]] = defaultdict(dict)
    for a in answers:
        if not a.query.key.startswith("host"):
            continue
        for labels, value in a.samples:
            if value is None:
                continue
            name = labels.get("instance", "?")
            key = a.query.key.partition(".")[2] or labels.get("__name__", "")
            hosts[name][key] = value
    out = []
    for name, h in sorted(hosts.items()):
        total = h.get("node_memory_MemTotal_bytes")
        avail = h.get("node_memory_MemAvailable_bytes")
        loads = [h.get(f"node_load{n}") for n in (1, 5, 15)]
        disk_total, disk_avail = h.get("disk_total_bytes"), h.get("disk_available_bytes")
        out.append(
            HostReading(
                hostname=name,
                cpu_percent=h.get("cpu_percent"),
                cpu_count=_int(h.get("cpu_count")),
                memory_used_bytes=_int(total - avail) if total and avail is not None else None,
                memory_total_bytes=_int(total),
                load_average=tuple(loads) if all(x is not None for x in loads) else None,  # type: ignore[arg-type]
                disk_used_bytes=_int(disk_total - disk_avail)
                if disk_total and disk_avail
                else None,
                disk_total_bytes=_int(disk_total),
            )
        )
    return tuple(out)


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)


# -- history for one model (drill-down charts) ----------------------------------------------------

_SERIES_NAMES = {
    "latency.0.5": "latency_p50_seconds",
    "latency.0.95": "latency_p95_seconds",
    "latency.0.99": "latency_p99_seconds",
    "requests": "requests_per_second",
    "queue": "queue_length",
    "vram": "vram_bytes",
}
MAX_POINTS = 240  # per series: enough for a chart, far below Prometheus's 11,000-point limit


def backfill(
    query_range: Callable[[str, float, float, float], list[Any]],
    profile: Profile,
    model: str,
    window: float,
    end: float,
    instance_sel: str,
    rate_window: str,
) -> dict[str, list[tuple[float, float]]]:
    """Range queries for one model over ``window`` seconds, so its charts are full at once."""
    from vramtop.sources.promql_syntax import matcher

    step = max(1.0, window / MAX_POINTS)
    sel = f"{matcher(profile.model_label, model)},{instance_sel}"
    raw: dict[str, dict[float, float]] = defaultdict(dict)
    for q in model_queries(profile, sel, rate_window):
        key = f"{q.key}.{q.quantile}" if q.key == "latency" else q.key
        if key not in _SERIES_NAMES and q.key not in ("successes", "errors"):
            continue
        for series in query_range(q.expr, end - window, end, step):
            for t, text in series.get("values") or []:
                value = _number(text)
                if value is None:
                    continue
                bucket = raw[key]
                t = float(t)
                scaled = value * q.scale
                bucket[t] = (
                    max(bucket.get(t, scaled), scaled)
                    if q.combine == "max"
                    else (bucket.get(t, 0.0) + scaled)
                )
    if "requests" not in raw and "successes" in raw:
        raw["requests"] = {
            t: v + raw.get("errors", {}).get(t, 0.0) for t, v in raw["successes"].items()
        }
    out = {name: sorted(raw[key].items()) for key, name in _SERIES_NAMES.items() if raw.get(key)}
    if raw.get("errors") and raw.get("requests"):
        req = raw["requests"]
        out["error_ratio"] = sorted((t, e / req[t]) for t, e in raw["errors"].items() if req.get(t))
    return out
