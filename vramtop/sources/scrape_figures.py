"""Figures from one target's /metrics: per model between two scrapes, as the PromQL source
computes them over its rate window, and GPUs read as the PromQL source reads a GPU exporter."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from vramtop.model import GpuReading
from vramtop.profiles import Profile, Series
from vramtop.sources.exposition import Samples, histogram_quantile, increase
from vramtop.sources.promql_syntax import counter_names
from vramtop.sources.promreadings import Answer, gpus_and_xids
from vramtop.sources.queries import QUANTILES, Query

Key = tuple[str, str]  # (profile, model)


@dataclass(slots=True)
class Scrape:
    at: float  # the source's clock (monotonic): rates
    seen: float  # the wall clock: a host's last_seen
    samples: Samples
    note: str = ""  # malformed lines skipped


def active(profiles: Sequence[Profile], forced: bool, samples: Samples) -> list[Profile]:
    names = set(samples)
    return [p for p in profiles if forced or names.intersection(p.detect)]


def model_figures(
    profiles: Sequence[Profile], before: Scrape, now: Scrape, instance: str
) -> tuple[dict[Key, dict[str, float]], dict[Key, dict[str, str]]]:
    """(profile, model) -> figure -> value, and the reasons for figures that are not finite."""
    dt = now.at - before.at
    figures: dict[Key, dict[str, float]] = defaultdict(dict)
    missing: dict[Key, dict[str, str]] = defaultdict(dict)
    for p in profiles:
        for key, series in p.series.items():
            for name, value in _evaluate(series, p.model_label, before, now, dt).items():
                model, _, q = name.partition("\0")  # quantiles come back as "model\0q"
                k = (p.name, model)
                if math.isfinite(value):
                    figures[k][f"{key}.{float(q)}" if q else key] = value
                else:  # null with a reason, as on the PromQL path; never NaN in a Frame
                    figures.setdefault(k, {})
                    missing[k][key] = f"{instance} reported {_word(value)} for it"
    return figures, missing


def gpus(
    profiles: Sequence[Profile], samples: Samples, host: str
) -> tuple[tuple[GpuReading, ...], dict[str, tuple[int, int]]]:
    """The GPU profiles' fields as the PromQL answers would hold them, assembled by the same
    code, so both paths read an exporter alike; every GPU belongs to ``host``. With them, the
    last XID each GPU reports (UUID -> (index, code))."""
    answers, by_name = [], {}
    for p in profiles:
        by_name[p.name] = p
        found = Answer(Query(p.name, p.kind, ""))
        for f in p.fields.values():
            for labels, value in samples.get(f.metric, {}).items():
                d = dict(labels)
                if all(re.fullmatch(rx, d.get(k, "")) for k, rx in f.match):
                    found.samples.append((_as_host(d, f.metric, p, host), _finite(value)))
        answers.append(found)
        if p.processes:
            procs = Answer(Query(p.name, f"{p.kind}.processes", ""))
            metric = p.processes["metric"]
            for labels, value in samples.get(metric, {}).items():
                procs.samples.append((_as_host(dict(labels), metric, p, host), _finite(value)))
            answers.append(procs)
    return gpus_and_xids(answers, by_name)


def _as_host(labels: dict[str, str], metric: str, p: Profile, host: str) -> dict[str, str]:
    for k in p.host_labels:
        labels.pop(k, None)
    return {**labels, "__name__": metric, "instance": host}


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _word(value: float) -> str:
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


def _pick(samples: Samples, names: Sequence[str]) -> dict:
    for name in names:
        if name in samples:
            return samples[name]
    return {}


def _matches(labels: dict[str, str], series: Series) -> bool:
    return all(re.fullmatch(rx, labels.get(k, "")) for k, rx in series.match)


def _evaluate(
    s: Series, model_label: str, before: Scrape, now: Scrape, dt: float
) -> dict[str, float]:
    """One figure per model, as the PromQL source would compute it over the scrape interval."""
    result: dict[str, float] = {}
    if s.kind == "gauge":
        groups: dict[str, list[float]] = defaultdict(list)
        for labels, value in _pick(now.samples, s.metrics).items():
            d = dict(labels)
            if model_label in d and _matches(d, s):
                groups[d[model_label]].append(value)
        for model, values in groups.items():
            result[model] = (max(values) if s.agg == "max" else sum(values)) * s.scale
    elif s.kind == "counter" and dt > 0:
        names = [n for m in s.metrics for n in counter_names(m)]
        for model, inc in _increases(names, model_label, s, before, now).items():
            result[model] = inc / dt * s.scale
    elif s.kind == "mean" and dt > 0:
        total = _increases(_all_names(s.metrics), model_label, s, before, now)
        count = _increases(_all_names(s.mean_count), model_label, s, before, now)
        for model, t in total.items():
            if count.get(model):
                result[model] = t / count[model] * s.scale
    elif s.kind == "histogram" and dt > 0:
        buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
        for m in s.metrics:
            cur, old = now.samples.get(f"{m}_bucket"), before.samples.get(f"{m}_bucket", {})
            if not cur:
                continue
            for labels, value in cur.items():
                d = dict(labels)
                if model_label in d and "le" in d and _matches(d, s):
                    buckets[d[model_label]][float(d["le"])] += increase(value, old.get(labels))
            break
        for q in (s.quantile,) if s.quantile else QUANTILES:
            for model, b in buckets.items():
                bad = next((c for c in b.values() if not math.isfinite(c)), None)
                v = bad if bad is not None else histogram_quantile(q, b.items())
                if v is not None:
                    result[model if s.quantile else f"{model}\0{q}"] = v * s.scale
    elif s.kind == "summary":
        for labels, value in _pick(now.samples, s.metrics).items():
            d = dict(labels)
            if model_label in d and "quantile" in d:
                result[f"{d[model_label]}\0{float(d['quantile'])}"] = value * s.scale
    return result


def _all_names(metrics: Sequence[str]) -> list[str]:
    return [n for m in metrics for n in counter_names(m)]


def _increases(
    names: Sequence[str], model_label: str, s: Series, before: Scrape, now: Scrape
) -> dict[str, float]:
    for name in names:
        cur = now.samples.get(name)
        if not cur:
            continue
        old = before.samples.get(name, {})
        per: dict[str, list[float]] = defaultdict(list)
        for labels, value in cur.items():
            d = dict(labels)
            if model_label in d and _matches(d, s):
                per[d[model_label]].append(increase(value, old.get(labels, value)))
        return {m: (max(v) if s.agg == "max" else sum(v)) for m, v in per.items()}
    return {}
