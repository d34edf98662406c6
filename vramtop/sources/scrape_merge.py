"""Many targets' figures as one fleet: a model served on several hosts is one ModelReading with
a share per host (InstanceFigures); a host with several targets (vLLM, its vramtop exporter) is
one host, up while any of them answers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import reduce
from types import MappingProxyType

from vramtop.model import (
    MODEL_FIGURES,
    GpuReading,
    HostReading,
    InstanceFigures,
    ModelReading,
    freeze,
)
from vramtop.profiles import Profile
from vramtop.sources.figures import model_from_figures
from vramtop.sources.scrape_figures import Key


@dataclass(slots=True)
class TargetResult:
    """One target's share of a poll: its figures, or why it did not answer."""

    host: str
    figures: dict[Key, dict[str, float]]
    missing: dict[Key, dict[str, str]]
    error: str = ""
    note: str = ""
    seen: float = 0.0  # the wall clock of this answer
    gpus: tuple[GpuReading, ...] = ()
    xids: dict[str, tuple[int, int]] = field(default_factory=dict)  # UUID -> (index, last XID)

    @property
    def ok(self) -> bool:
        return not self.error


def models(results: Sequence[TargetResult], profiles: Sequence[Profile]) -> list[ModelReading]:
    """One reading per model: sums across hosts (VRAM, rates, queues), the worst of quantiles
    and of figures a profile combines with ``max``; each host's share in ``by_instance``."""
    rank = {p.name: i for i, p in enumerate(profiles)}
    by_name = {p.name: p for p in profiles}
    entries: dict[Key, list[TargetResult]] = defaultdict(list)
    for r in results:
        for key in r.figures:
            entries[key].append(r)
    fleet: dict[str, list[ModelReading]] = defaultdict(list)
    shares: dict[str, dict[str, list[ModelReading]]] = defaultdict(lambda: defaultdict(list))
    for key in sorted(entries, key=lambda k: (rank.get(k[0], 0), k[1])):
        profile, model = key
        p, served = by_name[profile], entries[key]
        hosts = tuple(sorted({r.host for r in served}))
        missing = {k: v for r in served for k, v in r.missing.get(key, {}).items()}
        figures = _combine([r.figures[key] for r in served], p)
        fleet[model].append(model_from_figures(model, figures, profile, hosts, missing))
        for host in hosts:
            mine = _combine([r.figures[key] for r in served if r.host == host], p)
            shares[model][host].append(model_from_figures(model, mine, profile, (host,)))
    out = []
    for model, readings in fleet.items():
        m = reduce(fill, readings)
        per_host = tuple(_share(h, reduce(fill, ms)) for h, ms in sorted(shares[model].items()))
        out.append(replace(m, by_instance=per_host))
    return sorted(out, key=lambda m: m.name)


def hosts(
    results: Sequence[TargetResult], last_seen: Mapping[str, float]
) -> tuple[HostReading, ...]:
    """One reading per host key: up while any of its targets answers; ``detail`` names the
    targets that did not."""
    grouped: dict[str, list[TargetResult]] = defaultdict(list)
    for r in results:
        grouped[r.host].append(r)
    out = []
    for host, rs in sorted(grouped.items()):
        down = [r.error for r in rs if not r.ok]
        up = len(down) < len(rs)
        detail = "; ".join(down)
        if up and down:
            detail = f"{len(down)} of {len(rs)} targets down: {detail}"
        out.append(
            HostReading(
                hostname=host,
                instance=host,
                up=up,
                last_seen=last_seen.get(host),
                detail=detail,
            )
        )
    return tuple(out)


def fill(a: ModelReading, b: ModelReading) -> ModelReading:
    """The same model from two profiles (vLLM's serving figures, the vramtop exporter's VRAM):
    each figure from the first that has it, never added twice."""
    values = {
        n: getattr(a, n) if getattr(a, n) is not None else getattr(b, n) for n in MODEL_FIGURES
    }
    merged = replace(
        a,
        **values,
        instances=tuple(sorted(set(a.instances) | set(b.instances))),
        profile=a.profile or b.profile,
        extras=MappingProxyType({**b.extras, **a.extras}),
    )
    reasons = {**b.unavailable, **a.unavailable}
    known = {k for k in reasons if getattr(merged, _FIELD.get(k, k), None) is not None}
    return replace(merged, unavailable=freeze({k: v for k, v in reasons.items() if k not in known}))


# Reasons are keyed by a profile's figure (latency, vram...) or by the reading's field.
_FIELD = {
    "latency": "latency_p95_seconds",
    "vram": "vram_bytes",
    "queue": "queue_length",
    "requests": "requests_per_second",
    "errors": "error_ratio",
}


def _share(host: str, m: ModelReading) -> InstanceFigures:
    return InstanceFigures(
        instance=host,
        vram_bytes=m.vram_bytes,
        latency_p95_seconds=m.latency_p95_seconds,
        queue_length=m.queue_length,
        requests_per_second=m.requests_per_second,
    )


def _combine(dicts: Sequence[dict[str, float]], p: Profile) -> dict[str, float]:
    out: dict[str, float] = {}
    for d in dicts:
        for key, value in d.items():
            if key not in out:
                out[key] = value
            elif _worst(p, key):
                out[key] = max(out[key], value)
            else:
                out[key] += value
    return out


def _worst(p: Profile, key: str) -> bool:
    """Quantiles, means and ratios are not summed across targets: the worst one stands."""
    s = p.series.get(key) or p.series.get(key.partition(".")[0])
    return s is None or s.kind in ("histogram", "summary", "mean") or s.combine == "max"
