"""PromQL answers -> readings: models (with each replica's share), GPUs merged by UUID across
exporters, hosts, and which hosts are down. Every host is known by its fleet key
(vramtop.fleet.host_key, or the ``host_label`` the user names): see Naming."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from vramtop.clean import shorten
from vramtop.fleet import host_key, this_machine
from vramtop.model import (
    GpuHealth,
    GpuReading,
    HostReading,
    InstanceFigures,
    ModelReading,
    ProcessReading,
    freeze,
)
from vramtop.profiles import Profile
from vramtop.records import record
from vramtop.sources import remote_health
from vramtop.sources.figures import MAX_BYTES, model_from_figures, serving_reasons
from vramtop.sources.queries import INSTANCE_P95, PER_REPLICA, UP, Query

Samples = list[tuple[dict[str, str], float | None]]
# The figures a replica has: InstanceFigures' fields, as model_from_figures names them.
_SHARE_KEYS = {*PER_REPLICA, INSTANCE_P95}
_LISTED = 3  # targets named in a host's detail; the rest are counted
_KEYS_KEPT = 100_000  # instances whose host key is remembered (Naming)
_HEALTH_KEPT = 100_000  # GPUs' health kept across refreshes (HealthMemo)
_ABSENT = object()


@dataclass(slots=True)
class Answer:
    query: Query
    samples: Samples = field(default_factory=list)
    error: str | None = None


@record
class Naming:
    """How a series names its host: the value of ``label`` where the user named one and the
    series carries it, else its instance without the port. With ``local`` (this machine's name,
    given when Prometheus runs here too), a target on loopback is this machine."""

    label: str | None = None
    local: str | None = None
    # instance -> key: the same few thousand instances every refresh, one per series.
    _keys: dict[str | None, str | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def of(self, labels: dict[str, str]) -> str | None:
        if self.label and labels.get(self.label):
            return labels[self.label]
        instance = labels.get("instance")
        try:
            return self._keys[instance]
        except KeyError:
            pass
        key = host_key(instance)
        key = self.local if self.local and this_machine(key, self.local) else key
        if len(self._keys) >= _KEYS_KEPT:
            self._keys.clear()
        self._keys[instance] = key
        return key


BY_INSTANCE = Naming()


def vram_only(p: Profile) -> bool:
    """A profile that exists to measure VRAM (vramtop's exporter): its VRAM beats what a server
    says of itself, everywhere else the first profile wins."""
    return set(p.series) == {"vram"}


class _Best:
    """Values per key where a lower rank wins and, at equal rank, the first one stays."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        self._rank: dict[str, int] = {}

    def offer(self, key: str, value: float, rank: int) -> None:
        if key not in self.values or rank < self._rank[key]:
            self.values[key], self._rank[key] = value, rank


def models(
    answers: Iterable[Answer],
    profiles: dict[str, Profile],
    naming: Naming = BY_INSTANCE,
    window: str = "2m",
) -> tuple[ModelReading, ...]:
    """``window``: the rate window, named in the reason for a figure with no requests."""
    figures: dict[str, _Best] = defaultdict(_Best)
    nodata: dict[str, set[str]] = defaultdict(set)  # a NaN answer: the metric, no requests
    shares: dict[tuple[str, str], _Best] = defaultdict(_Best)
    instances: dict[str, set[str]] = defaultdict(set)
    source: dict[str, Profile] = {}
    missing: dict[str, dict[str, str]] = defaultdict(dict)
    for a in answers:
        p = profiles.get(a.query.profile)
        if p is None or p.kind != "model":
            continue
        q = a.query
        measured = vram_only(p)
        rank = 0 if q.key == "vram" and measured else 1
        per_model: dict[str, list[float]] = defaultdict(list)
        per_host: dict[tuple[str, str], list[float]] = defaultdict(list)
        shared, p95, latency = q.key in _SHARE_KEYS, q.key == INSTANCE_P95, q.key == "latency"
        scale, model_label = q.scale, p.model_label
        for labels, value in a.samples:
            name = labels.get(model_label)
            if name is None:
                continue
            was = source.get(name)
            if was is None or (not measured and was is not p and vram_only(was)):
                source[name] = p
            if "instance" in labels:
                instances[name].add(labels["instance"])
            if value is None or math.isinf(value):
                nodata[name].add(q.key)
                continue
            if shared and (host := naming.of(labels)):
                per_host[(name, host)].append(value * scale)
            if p95:
                continue
            if latency and "quantile" in labels:
                figures[name].offer(f"latency.{float(labels['quantile'])}", value * scale, rank)
                continue
            per_model[name].append(value * scale)
        key = f"{q.key}.{q.quantile}" if q.key == "latency" else q.key
        for name, values in per_model.items():
            figures[name].offer(key, max(values) if q.combine == "max" else sum(values), rank)
        for share, values in per_host.items():
            shares[share].offer(q.key, max(values) if q.combine == "max" else sum(values), rank)
        if a.error:
            for name in figures:
                missing[name][q.key] = a.error.lstrip("!")
    by_model: dict[str, list[InstanceFigures]] = defaultdict(list)
    for (name, host), best in sorted(shares.items()):
        by_model[name].append(_share(host, best.values))
    out = []
    for name, best in sorted(figures.items()):
        p = source.get(name)
        hosts = ", ".join(sorted(instances[name]))
        where = f"in Prometheus for {hosts}" if hosts else "in Prometheus"
        idle = f"no requests in the last {window}"
        reasons = serving_reasons(p, best.values, nodata[name], where, idle) if p else {}
        m = model_from_figures(
            name,
            best.values,
            p.name if p else None,
            tuple(sorted(instances[name])),
            {**reasons, **missing[name]},
        )
        out.append(replace(m, by_instance=tuple(by_model.get(name, ()))))
    return tuple(out)


def _share(host: str, f: dict[str, float]) -> InstanceFigures:
    requests = f.get("requests")
    if requests is None and "successes" in f:
        requests = f["successes"] + f.get("errors", 0.0)
    vram = f.get("vram")
    return InstanceFigures(
        instance=host,
        vram_bytes=int(vram) if vram is not None and 0 <= vram <= MAX_BYTES else None,
        latency_p95_seconds=f.get(INSTANCE_P95),
        queue_length=f.get("queue"),
        requests_per_second=requests,
    )


# -- GPUs -----------------------------------------------------------------------------------------


@lru_cache(maxsize=65536)  # the same UUIDs every refresh, tens of series each
def normalise_uuid(uuid: str | None) -> str | None:
    """``GPU-8A7F...``, ``gpu-8a7f...`` and nvidia_gpu_exporter's bare ``8a7f...`` are one GPU."""
    if not uuid:
        return None
    text = uuid.strip().lower()
    for prefix in ("gpu-", "mig-"):
        if text.startswith(prefix):
            return prefix.upper() + text[len(prefix) :]
    return "GPU-" + text


def _gpu_host(labels: dict[str, str], p: Profile, naming: Naming) -> str:
    """The host key; an exporter's own host label only where a series has no instance."""
    key = naming.of(labels)
    return key or next((labels[k] for k in p.host_labels if labels.get(k)), "?")


def gpus(
    answers: Iterable[Answer], profiles: dict[str, Profile], naming: Naming = BY_INSTANCE
) -> tuple[GpuReading, ...]:
    """One GpuReading per GPU UUID, whichever exporters see it (vramtop's, DCGM,
    nvidia_gpu_exporter): each field from the first profile that has it."""
    return gpus_and_xids(answers, profiles, naming)[0]


class HealthMemo:
    """GpuHealth by the profiles and health fields that made it: a fleet's GPUs report the same
    counters refresh after refresh, and each GpuHealth is a dozen reasons. Held by one source,
    whose profile names are unique."""

    def __init__(self) -> None:
        self._kept: dict[tuple, tuple[GpuHealth | None, str]] = {}
        self._order = tuple(sorted(remote_health.KEYS))

    def health(self, g: dict[str, Any], mine: list[Profile]) -> tuple[GpuHealth | None, str]:
        key = (g["profiles"], *[g.get(k, _ABSENT) for k in self._order])
        found = self._kept.get(key)
        if found is None:
            if len(self._kept) >= _HEALTH_KEPT:
                self._kept.clear()
            found = self._kept[key] = remote_health.health(g, mine)
        return found


def gpus_and_xids(
    answers: Iterable[Answer],
    profiles: dict[str, Profile],
    naming: Naming = BY_INSTANCE,
    memo: HealthMemo | None = None,
) -> tuple[tuple[GpuReading, ...], dict[str, tuple[int, int]]]:
    """The GPUs, and the last XID each exporter reports: UUID -> (index, code), for
    remote_health.XidWatch. ``memo``: health already built by earlier refreshes."""
    memo = memo or HealthMemo()
    seen: dict[str, dict[str, dict[str, Any]]] = {}  # uuid -> profile -> fields
    of_profile: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)  # profile -> uuid -> g
    procs: dict[str, list[ProcessReading]] = defaultdict(list)
    indexes: dict[str, int] = {}  # "0" -> 0: eight values, tens of thousands of series
    health_keys, summed, blank = remote_health.KEYS, remote_health.SUMMED, remote_health.BLANK
    for a in answers:
        p = profiles.get(a.query.profile)
        if p is None or p.kind != "gpu":
            continue
        by_metric = {f.metric: (key, f.scale) for key, f in p.fields.items()}
        uuid_label, name_label, index_label = p.uuid_label or "uuid", p.name_label, p.index_label
        mine = of_profile[p.name]
        processes = a.query.key == "gpu.processes"
        for labels, value in a.samples:
            uuid = normalise_uuid(labels.get(uuid_label))
            if uuid is None:
                continue
            g = mine.get(uuid)
            if g is None:  # once per GPU: a fleet answer has tens of series per GPU
                g = mine[uuid] = {"profile": p.name, "host": _gpu_host(labels, p, naming)}
                seen.setdefault(uuid, {})[p.name] = g
            elif g["host"] == "?":  # no instance: the host labels are on the GPU's own series
                g["host"] = _gpu_host(labels, p, naming)
            if name_label and (text := labels.get(name_label)):
                g["name"] = text
            if index_label and (text := labels.get(index_label)):
                index = indexes.get(text)
                if index is None and text.isdigit():
                    index = indexes[text] = int(text)
                if index is not None:
                    g["index"] = index
            if processes:
                pid = labels.get(p.processes.get("pid_label", "pid"), "")
                if pid.isdigit():
                    used = None if value is None else int(value)
                    name = labels.get(p.processes.get("name_label", ""), None)
                    procs[uuid].append(ProcessReading(int(pid), -1, used, name=name, detail=p.name))
                continue
            if value is None:
                continue
            field_key, scale = by_metric.get(labels.get("__name__", ""), (None, 1.0))
            if field_key:
                if field_key in health_keys and not 0 <= value < blank:
                    continue  # NaN, below zero, or DCGM's "blank" sentinels: not a reading
                if field_key in summed:  # one series per link or lane
                    g[field_key] = g.get(field_key, 0.0) + value * scale
                else:
                    g[field_key] = value * scale
    merged = {uuid: _merge(views) for uuid, views in seen.items()}
    out = [
        _gpu(uuid, g, procs[uuid], profiles, memo)
        for uuid, g in sorted(merged.items(), key=lambda kv: (kv[1]["host"], kv[1].get("index", 0)))
    ]
    xids = {
        uuid: (int(g.get("index", 0)), int(g[remote_health.XID]))
        for uuid, g in merged.items()
        if remote_health.XID in g
    }
    return tuple(out), xids


def _merge(views: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each profile's view completed first (a total from used + free + reserved), then the
    first profile's value of each field wins."""
    out: dict[str, Any] = {}
    for g in reversed(views.values()):  # the first profile's update last: its values win
        if "memory_total_bytes" not in g and "memory_free_bytes" in g and "memory_used_bytes" in g:
            g["memory_total_bytes"] = (
                g["memory_used_bytes"] + g["memory_free_bytes"] + g.get("memory_reserved_bytes", 0)
            )
        out.update(g)
    out["profiles"] = "+".join(views)
    return out


def _gpu(
    uuid: str,
    g: dict[str, Any],
    procs: list[ProcessReading],
    profiles: dict[str, Profile],
    memo: HealthMemo,
) -> GpuReading:
    index = int(g.get("index", 0))
    host = g["host"]
    mine = [profiles[n] for n in g["profiles"].split("+") if n in profiles]
    health, why = memo.health(g, mine)
    return GpuReading(
        index=index,
        uuid=uuid,
        name=g.get("name"),
        host=host,
        memory_used_bytes=_int(g.get("memory_used_bytes")),
        memory_total_bytes=_int(g.get("memory_total_bytes")),
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
                detail=f"seen through {pr.detail} on {host}",
            )
            for pr in procs
        ),
        health=health,
        unavailable=freeze({"health": why} if why else {}),
    )


# -- hosts ----------------------------------------------------------------------------------------


def hosts(answers: Iterable[Answer], naming: Naming = BY_INSTANCE) -> dict[str, HostReading]:
    """node_exporter's hosts by key. Derived figures (``avg by (instance)``) lose the host label:
    the plain fields' series say which key their instance has."""
    host_answers = [a for a in answers if a.query.key.startswith("host")]
    alias: dict[str, str] = {}
    if naming.label:
        for a in host_answers:
            for labels, _ in a.samples:
                if labels.get(naming.label) and "instance" in labels:
                    alias[labels["instance"]] = labels[naming.label]
    found: dict[str, dict[str, float]] = defaultdict(dict)
    names: dict[str, str] = {}  # the exporter's own instance: what the host is called
    for a in host_answers:
        for labels, value in a.samples:
            if value is None:
                continue
            key = alias.get(labels.get("instance", "")) or naming.of(labels) or "?"
            name = a.query.key.partition(".")[2] or labels.get("__name__", "")
            found[key][name] = value
            names.setdefault(key, labels.get("instance") or key)
    return {key: _host(key, names[key], h) for key, h in sorted(found.items())}


def _host(key: str, name: str, h: dict[str, float]) -> HostReading:
    total = h.get("node_memory_MemTotal_bytes")
    avail = h.get("node_memory_MemAvailable_bytes")
    loads = [h.get(f"node_load{n}") for n in (1, 5, 15)]
    disk_total, disk_avail = h.get("disk_total_bytes"), h.get("disk_available_bytes")
    return HostReading(
        hostname=name,
        instance=key,
        up=True,
        cpu_percent=h.get("cpu_percent"),
        cpu_count=_int(h.get("cpu_count")),
        memory_used_bytes=_int(total - avail) if total and avail is not None else None,
        memory_total_bytes=_int(total),
        load_average=tuple(loads) if all(x is not None for x in loads) else None,  # type: ignore[arg-type]
        disk_used_bytes=_int(disk_total - disk_avail) if disk_total and disk_avail else None,
        disk_total_bytes=_int(disk_total),
    )


@record
class Target:
    """One scrape target as ``up`` reports it."""

    instance: str
    job: str
    up: bool

    def __str__(self) -> str:
        return f"{shorten(self.instance, 40)} (job {shorten(self.job, 30)})"


def targets(answers: Iterable[Answer], naming: Naming = BY_INSTANCE) -> dict[str, list[Target]]:
    """Every target of the ``up`` query by host key; empty when the query failed."""
    out: dict[str, list[Target]] = defaultdict(list)
    for a in answers:
        if a.query.key != UP:
            continue
        for labels, value in a.samples:
            key = naming.of(labels)
            if key and value is not None:
                out[key].append(
                    Target(labels.get("instance", "?"), labels.get("job", "?"), value == 1)
                )
    return {k: sorted(v, key=lambda t: (t.instance, t.job)) for k, v in out.items()}


def with_health(
    found: dict[str, HostReading],
    by_host: dict[str, list[Target]],
    known: set[str | None],
    last_up: dict[str, float],
    unknown: dict[str, str],
) -> tuple[HostReading, ...]:
    """node_exporter's hosts, plus what ``up`` says: a host whose targets are all down is down
    (``last_seen`` from ``last_up``, else the reason in ``unknown``); a host with some targets
    down stays up and its detail names them, where it is a host of the fleet (``known``: it has
    GPUs, models or a node_exporter reading), not any machine Prometheus happens to scrape."""
    out = dict(found)
    for key, ts in by_host.items():
        down = [t for t in ts if not t.up]
        if not down or (len(down) < len(ts) and key not in known and key not in found):
            continue
        names = ", ".join(str(t) for t in down[:_LISTED])
        if len(down) > _LISTED:
            names += f" and {len(down) - _LISTED} more"
        reading = out.get(key) or HostReading(hostname=key, instance=key)
        if len(down) == len(ts):
            reasons = {"last_seen": unknown[key]} if key in unknown else {}
            out[key] = replace(
                reading,
                up=False,
                last_seen=last_up.get(key),
                detail=f"every target down: {names}",
                unavailable=freeze({**reading.unavailable, **reasons}),
            )
        else:
            out[key] = replace(
                reading, up=True, detail=f"{len(down)} of {len(ts)} targets down: {names}"
            )
    return tuple(out[k] for k in sorted(out))


def _int(value: float | None) -> int | None:
    return None if value is None else int(value)
