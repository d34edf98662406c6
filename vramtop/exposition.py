"""The Prometheus text exposition format, read; and the two computations a scrape needs
without Prometheus: counter rates and ``histogram_quantile`` between two scrapes."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable

Labels = tuple[tuple[str, str], ...]
Samples = dict[str, dict[Labels, float]]  # metric name -> labels -> value

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


class ExpositionError(ValueError):
    pass


def parse(text: str) -> Samples:
    """Samples by metric name. Comments and TYPE/HELP lines are skipped; a malformed line
    raises ExpositionError naming its line number."""
    out: Samples = defaultdict(dict)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            raise ExpositionError(f"line {number} is not a metric sample")
        name, raw_labels, raw_value = m.groups()
        labels = _labels(raw_labels[1:-1], number) if raw_labels else ()
        try:
            value = float(raw_value)
        except ValueError:
            raise ExpositionError(f"line {number} has a value that is not a number") from None
        out[name][labels] = value
    return dict(out)


def _labels(text: str, number: int) -> Labels:
    pairs = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if not m:
            raise ExpositionError(f"line {number} has malformed labels")
        value = re.sub(r"\\[\\\"n]", lambda e: _UNESCAPE[e.group()], m.group(2))
        pairs.append((m.group(1), value))
        pos = m.end()
    return tuple(sorted(pairs))


def increase(now: float, before: float | None) -> float:
    """A counter's increase; a reset (value went down) counts from zero, as rate() does."""
    if before is None:
        return 0.0
    return now - before if now >= before else now


def histogram_quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """Prometheus's histogram_quantile over (upper bound, cumulative count) pairs: linear
    interpolation inside the bucket that holds the rank. None when there is no observation."""
    ordered = sorted(buckets)
    if not ordered or not math.isinf(ordered[-1][0]):
        return None
    total = ordered[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower, count_before = 0.0, 0.0
    for upper, cumulative in ordered:
        if cumulative >= rank:
            if math.isinf(upper):
                return lower  # the rank is in the +Inf bucket: the last finite bound
            in_bucket = cumulative - count_before
            if in_bucket <= 0:
                return upper
            return lower + (upper - lower) * (rank - count_before) / in_bucket
        lower, count_before = upper, cumulative
    return None


def labels_dict(labels: Labels) -> dict[str, str]:
    return dict(labels)
