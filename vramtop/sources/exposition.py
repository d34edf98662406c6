"""The Prometheus text and OpenMetrics exposition formats, read with prometheus_client's parsers;
and the two computations a scrape needs without Prometheus: counter rates and
``histogram_quantile`` between two scrapes.

Samples are keyed by the sample name as the server wrote it (``x_total``, ``x_bucket``,
``x_count``), in both formats. A malformed line or series is skipped and counted, never the
whole answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as _openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as _text_families

Labels = tuple[tuple[str, str], ...]
Samples = dict[str, dict[Labels, float]]  # sample name -> labels -> value

OPENMETRICS = "application/openmetrics-text"
_COUNTER_TYPE = re.compile(r"^[ \t]*#[ \t]+TYPE[ \t]+(\S+)[ \t]+counter[ \t]*$", re.MULTILINE)
PROBLEM_CHARS = 120  # of a line quoted in a problem: the rest is the server's, and may be huge


class ExpositionError(ValueError):
    pass


class TooManySeries(ExpositionError):
    def __init__(self, cap: int) -> None:
        super().__init__(f"more than {cap} series")
        self.cap = cap


@dataclass(slots=True)
class Exposition:
    samples: Samples = field(default_factory=dict)
    skipped: int = 0  # malformed lines or series left out
    problem: str = ""  # the first of them, e.g. 'line 17: invalid labels'


def read(text: str, content_type: str = "", max_series: int = 0) -> Exposition:
    """Samples by name; a malformed line or series is skipped and counted. More than
    ``max_series`` sample lines (0: no cap) raises TooManySeries before anything is built."""
    if max_series:
        _check_count(text, max_series)
    openmetrics = OPENMETRICS in content_type.lower()
    out = Exposition()
    try:
        families = _openmetrics_families(text) if openmetrics else _text_families(text)
        renamed = set() if openmetrics else set(_COUNTER_TYPE.findall(text))
        for family in families:
            _add_family(out, family, renamed)
        return out
    except Exception as err:  # the library's message for any bad line: read line by line
        whole = _first_line(err)
    out = Exposition()
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            _add_line(out, number, line)
    if not out.skipped:  # every line reads alone: the fault is in the whole (no # EOF, ...)
        out.skipped, out.problem = 1, whole
    return out


def parse(text: str, content_type: str = "") -> Samples:
    """Strict: the samples, or ExpositionError naming the first malformed line."""
    result = read(text, content_type)
    if result.skipped:
        raise ExpositionError(result.problem)
    return result.samples


def _check_count(text: str, cap: int) -> None:
    bound = text.count("\n") + 1 - text.count("\n#") - text.count("\n\n")
    if bound <= cap:
        return
    count = 0
    for line in text.splitlines():  # exact, and stops just past the cap
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            count += 1
            if count > cap:
                raise TooManySeries(cap)


def _add_family(out: Exposition, family, renamed: set[str]) -> None:  # type: ignore[no-untyped-def]
    # The text parser renames a counter ``x`` (no _total, as Triton and TGI write it) to
    # ``x_total``; give it back its name as written.
    undo = family.type == "counter" and family.name in renamed
    for s in family.samples:
        name = family.name if undo and s.name == family.name + "_total" else s.name
        _add(out, name, s.labels, s.value, "")


def _add_line(out: Exposition, number: int, line: str) -> None:
    where = f"line {number}: "
    try:
        samples = [s for f in _text_families(line + "\n") for s in f.samples]
    except Exception:
        head, sep, _ = line.partition(" # ")  # an exemplar the text parser cannot read
        try:
            samples = [s for f in _text_families(head + "\n") for s in f.samples] if sep else []
        except Exception:
            samples = []
        if not samples:
            _skip(out, where + line)
            return
    for s in samples:
        _add(out, s.name, s.labels, s.value, where)


def _add(out: Exposition, name: str, labels: dict[str, str], value: object, where: str) -> None:
    if not isinstance(value, int | float):
        return  # a native histogram: nothing vramtop reads
    if "le" in labels or "quantile" in labels:
        for key in ("le", "quantile"):
            if key in labels and (key == "quantile" or name.endswith("_bucket")):
                try:
                    float(labels[key])
                except ValueError:
                    _skip(out, f"{where}{name} has {key}={labels[key][:40]!r}, not a number")
                    return
    series = out.samples.setdefault(name, {})
    key = tuple(sorted(labels.items()))
    if key in series:
        _skip(out, f"{where}{name} is given twice with the same labels")
        return
    try:
        series[key] = float(value)
    except OverflowError:  # an integer beyond any float
        series[key] = math.inf if value > 0 else -math.inf  # type: ignore[operator]


def _skip(out: Exposition, problem: str) -> None:
    out.skipped += 1
    if not out.problem:
        out.problem = problem[:PROBLEM_CHARS] + ("…" if len(problem) > PROBLEM_CHARS else "")


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text[:PROBLEM_CHARS] + ("…" if len(text) > PROBLEM_CHARS else "")


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
