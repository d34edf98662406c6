"""An inference server's own /metrics, read directly when there is no Prometheus.

The same profiles as the PromQL source say which metric is which. Rates and quantiles need two
scrapes: they are computed between this scrape and the previous one; a one-shot run takes two
scrapes a short gap apart.
"""

from __future__ import annotations

import math
import re
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from vramtop import redact
from vramtop.model import ModelReading
from vramtop.profiles import Profile, Series
from vramtop.sources.base import SourceError
from vramtop.sources.exposition import (
    ExpositionError,
    Samples,
    TooManySeries,
    histogram_quantile,
    increase,
    read,
)
from vramtop.sources.figures import model_from_figures
from vramtop.sources.http import Endpoint, client, fetch, safe_text
from vramtop.sources.pool import DaemonPool
from vramtop.sources.promql_syntax import counter_names
from vramtop.sources.queries import QUANTILES

FIRST_GAP = 1.0  # seconds between the two scrapes of a first (or one-shot) reading


@dataclass(frozen=True, slots=True)
class ScrapeReading:
    models: tuple[ModelReading, ...]
    note: str = ""


@dataclass(slots=True)
class _Scrape:
    at: float
    samples: Samples
    note: str = ""  # malformed lines skipped


class ScrapeSource:
    name = "scrape"

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        profiles: Sequence[Profile],
        forced: bool = False,
        clock: Callable[[], float] = time.monotonic,
        first_gap: float = FIRST_GAP,
        window: float = 120.0,
        max_series: int = 200_000,
    ) -> None:
        """Rates are taken against the oldest scrape kept within ``window`` seconds (as
        ``rate(x[window])`` would), so polling faster than servers update stays smooth."""
        self._endpoints = list(endpoints)
        self._profiles = [p for p in profiles if p.kind == "model"]
        self._forced = forced
        self._clock = clock
        self._gap = first_gap
        self._clients = [client(e) for e in self._endpoints]
        self._window = window
        self._max_series = max_series  # per target and scrape; more is an error naming the cap
        self._kept: dict[str, deque[_Scrape]] = defaultdict(deque)
        self._pool = DaemonPool(4, "vramtop-scrape")

    def close(self) -> None:
        self._pool.shutdown()
        for c in self._clients:
            c.close()

    def poll(self) -> ScrapeReading:
        results = list(self._pool.map(self._one, range(len(self._endpoints))))
        models = [m for ok, value in results if ok for m in value[0]]
        errors = [value for ok, value in results if not ok]
        if errors and len(errors) == len(results):
            raise SourceError("; ".join(errors))
        notes = errors + [value[1] for ok, value in results if ok and value[1]]
        return ScrapeReading(tuple(sorted(models, key=lambda m: m.name)), "; ".join(notes))

    def _one(self, i: int) -> tuple[bool, object]:
        endpoint, http = self._endpoints[i], self._clients[i]
        try:
            kept = self._kept[endpoint.url]
            if not kept:
                kept.append(self._fetch(endpoint, http))
                time.sleep(self._gap)
            current = self._fetch(endpoint, http)
            while len(kept) > 1 and current.at - kept[1].at >= self._window:
                kept.popleft()
            before = kept[0]
            if current.at - kept[-1].at >= self._window / 16:  # a bounded number of baselines
                kept.append(current)
            instance = _instance(endpoint.url)
            return True, (self._models(before, current, instance), current.note)
        except SourceError as err:
            return False, err.reason

    def _fetch(self, endpoint: Endpoint, http: httpx.Client) -> _Scrape:
        where = f"metrics at {endpoint.safe_url}"
        # The URL itself, no trailing /; the whole answer within the timeout and the size cap.
        resp = fetch(http, endpoint, str(http.base_url).rstrip("/"), "metrics")
        if "html" in resp.headers.get("content-type", ""):
            raise SourceError(
                f"{where} answered with an HTML page (HTTP {resp.status_code}), not the metrics "
                "text format: a proxy or login page in the way, or the wrong URL"
            )
        if resp.status_code in (401, 403):
            raise SourceError(
                f"{where} refused access (HTTP {resp.status_code}): check the token or password"
            )
        if resp.status_code != 200:
            raise SourceError(f"{where} answered HTTP {resp.status_code}")
        try:
            return _read(self._clock(), resp.text, _content_type(resp), where, self._max_series)
        except ExpositionError as err:
            raise SourceError(
                f"{where} are not in the Prometheus text format ({safe_text(err)})"
            ) from None

    def _models(self, before: _Scrape, now: _Scrape, instance: str) -> list[ModelReading]:
        dt = now.at - before.at
        names = set(now.samples)
        active = [p for p in self._profiles if self._forced or names.intersection(p.detect)]
        out: list[ModelReading] = []
        for p in active:
            figures: dict[str, dict[str, float]] = defaultdict(dict)
            missing: dict[str, dict[str, str]] = defaultdict(dict)
            for key, series in p.series.items():
                for name, value in _evaluate(series, p.model_label, before, now, dt).items():
                    model, _, q = name.partition("\0")  # quantiles come back as "model\0q"
                    if math.isfinite(value):
                        figures[model][f"{key}.{float(q)}" if q else key] = value
                    else:  # null with a reason, as on the PromQL path; never NaN in a Frame
                        figures.setdefault(model, {})
                        missing[model][key] = f"{instance} reported {_word(value)} for it"
            for model, f in figures.items():
                out.append(model_from_figures(model, f, p.name, (instance,), missing.get(model)))
        return out


def _content_type(resp: httpx.Response) -> str:
    return resp.headers.get("content-type", "")


def _read(at: float, text: str, content_type: str, where: str, cap: int) -> _Scrape:
    """One answer as samples; malformed lines are skipped and named in the note."""
    try:
        got = read(text, content_type, cap)
    except TooManySeries:
        raise SourceError(
            f"{where} hold more than {cap} series (max_series): raise max_series "
            "(config or VRAMTOP_MAX_SERIES) or scrape a narrower endpoint"
        ) from None
    note = ""
    if got.skipped:
        lines = "1 malformed line" if got.skipped == 1 else f"{got.skipped} malformed lines"
        note = f"skipped {lines} of {where} ({redact.text(got.problem)})"
    return _Scrape(at, got.samples, note)


def _word(value: float) -> str:
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


def _instance(url: str) -> str:
    safe = redact.url(url)
    return safe.split("://", 1)[-1].split("/", 1)[0]


def _pick(samples: Samples, names: Sequence[str]) -> dict:
    for name in names:
        if name in samples:
            return samples[name]
    return {}


def _matches(labels: dict[str, str], series: Series) -> bool:
    return all(re.fullmatch(rx, labels.get(k, "")) for k, rx in series.match)


def _evaluate(
    s: Series, model_label: str, before: _Scrape, now: _Scrape, dt: float
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
    elif s.kind == "histogram":
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
    names: Sequence[str], model_label: str, s: Series, before: _Scrape, now: _Scrape
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
