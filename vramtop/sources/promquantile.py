"""Model-level histogram quantiles computed here, from the bucket rates Prometheus sums per
model (queries.BUCKETS): one rate() over a histogram's buckets answers p50, p95 and p99 at
once, where three histogram_quantile queries evaluate that rate three times. At a fleet's size
those rates are most of Prometheus's work per refresh; the sums are a few series per model."""

from __future__ import annotations

import math
import sys

from vramtop.profiles import Profile
from vramtop.sources.promreadings import Answer
from vramtop.sources.queries import ALT, Query

_TOLERANCE = 1e-12  # Prometheus's smallDeltaTolerance: float noise between buckets is no drop


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus's histogram_quantile (promql/quantile.go, classic buckets) over {upper bound:
    cumulative count}, with its arithmetic, so the answer is the one Prometheus would give.
    None where Prometheus answers NaN: no observations, or no +Inf bucket."""
    if math.isnan(q):
        return None
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    bounds = sorted(buckets)
    if len(bounds) < 2 or not math.isinf(bounds[-1]) or bounds[-1] < 0:
        return None
    counts = _monotonic([buckets[b] for b in bounds])
    observations = counts[-1]
    if observations == 0:
        return None
    rank = q * observations
    b = next((i for i, c in enumerate(counts[:-1]) if c >= rank), len(counts) - 1)
    if b == len(counts) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[b], counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count)


def _monotonic(counts: list[float]) -> list[float]:
    """Cumulative counts never fall: rate() of each bucket on its own can, by float noise or a
    scrape between two buckets' samples. As Prometheus does: a lower count takes the one before."""
    out = list(counts)
    prev = out[0]
    for i in range(1, len(out)):
        cur = out[i]
        if cur == prev:
            continue
        if _almost_equal(prev, cur) or cur < prev:
            out[i] = prev
            continue
        prev = cur
    return out


def _almost_equal(a: float, b: float) -> bool:
    diff, total = abs(a - b), abs(a) + abs(b)
    if a == 0 or b == 0 or total < sys.float_info.min:
        return diff < _TOLERANCE * sys.float_info.min
    return diff / min(total, sys.float_info.max) < _TOLERANCE


def expand(a: Answer, p: Profile) -> list[Answer]:
    """A BUCKETS answer as the answers its histogram_quantile queries would have been: per
    model, each wanted quantile (None where it had no requests), from the first alternative
    metric that has buckets for that model."""
    per_model: dict[str, dict[int, dict[float, float]]] = {}
    for labels, value in a.samples:
        name, le = labels.get(p.model_label), labels.get("le")
        if name is None or le is None or value is None:
            continue
        try:
            bound = float(le)
        except ValueError:
            continue  # as Prometheus: a bucket whose bound is no number is skipped
        alt = labels.get(ALT, "0")
        alts = per_model.setdefault(name, {})
        buckets = alts.setdefault(int(alt) if alt.isdigit() else 0, {})
        buckets[bound] = buckets.get(bound, 0.0) + value  # "1" and "1.0": one bucket
    out = []
    for key, q, scale in a.query.targets:
        samples = [
            ({p.model_label: name}, quantile(q, alts[min(alts)]))
            for name, alts in per_model.items()
        ]
        out.append(Answer(Query(p.name, key, a.query.expr, q, scale), samples, a.error))
    return out
