"""The fixed set of PromQL queries a profile needs, whatever the number of models or hosts:
every query groups by model (and instance) so one answer covers all of them."""

from __future__ import annotations

from dataclasses import dataclass

from vramtop.profiles import Profile, Series
from vramtop.sources.promql_syntax import counter_names, either, matcher, names_regex, quote

QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class Query:
    profile: str
    key: str  # latency, requests, extras.ttft_p95_seconds, gpu, host, host.cpu_percent ...
    expr: str
    quantile: float | None = None
    scale: float = 1.0
    combine: str = "sum"


def _sel(base: str, series_match: tuple[tuple[str, str], ...] = ()) -> str:
    return ",".join([*(matcher(k, v, regex=True) for k, v in series_match), base])


def model_queries(p: Profile, sel: str, window: str) -> list[Query]:
    out: list[Query] = []
    label = p.model_label
    for key, s in p.series.items():
        matchers = _sel(sel, s.match)
        if s.kind == "histogram":
            quantiles = (s.quantile,) if s.quantile else QUANTILES
            for q in quantiles:
                expr = either(
                    *(
                        f"histogram_quantile({q}, sum by (le, {label}) "
                        f"(rate({m}_bucket{{{matchers}}}[{window}])))"
                        for m in s.metrics
                    )
                )
                out.append(Query(p.name, key, expr, q, s.scale))
        elif s.kind == "summary":
            wanted = (s.quantile,) if s.quantile else QUANTILES
            qsel = f"quantile=~{quote('|'.join(str(q) for q in wanted))},{matchers}"
            expr = either(*(f"max by ({label}, quantile) ({m}{{{qsel}}})" for m in s.metrics))
            out.append(Query(p.name, key, expr, None, s.scale))
        elif s.kind == "counter":
            expr = either(
                *(
                    f"{s.agg} by ({label}, instance) (rate({name}{{{matchers}}}[{window}]))"
                    for m in s.metrics
                    for name in counter_names(m)
                )
            )
            out.append(Query(p.name, key, expr, None, s.scale, s.combine))
        elif s.kind == "gauge":
            expr = either(
                *(f"{s.agg} by ({label}, instance) ({m}{{{matchers}}})" for m in s.metrics)
            )
            out.append(Query(p.name, key, expr, None, s.scale, s.combine))
        else:  # mean of a duration counter over a count counter, per model
            out.append(Query(p.name, key, _mean(s, label, matchers, window), None, s.scale, "max"))
    return out


def _mean(s: Series, label: str, matchers: str, window: str) -> str:
    def total(names: tuple[str, ...]) -> str:
        return either(
            *(
                f"sum by ({label}) (rate({name}{{{matchers}}}[{window}]))"
                for m in names
                for name in counter_names(m)
            )
        )

    return f"({total(s.metrics)}) / ({total(s.mean_count)})"


def field_queries(p: Profile, sel: str, window: str) -> list[Query]:
    """GPU and host exporters: every plain field in ONE query (selected by metric name), plus
    one query per derived expression."""
    plain = [f for f in p.fields.values() if not f.match]
    out = []
    if plain:
        names = names_regex([f.metric for f in plain])
        out.append(Query(p.name, p.kind, f"{{__name__=~{quote(names)},{sel}}}"))
    for key, f in p.fields.items():
        if f.match:
            out.append(Query(p.name, f"{p.kind}.{key}", f"{f.metric}{{{_sel(sel, f.match)}}}"))
    for key, expr in p.expressions.items():
        text = expr.replace("$sel", sel).replace("$window", window)
        out.append(Query(p.name, f"{p.kind}.{key}", text))
    if p.processes:
        metric = p.processes["metric"]
        out.append(Query(p.name, f"{p.kind}.processes", f"{metric}{{{sel}}}"))
    return out


def detect_query(profiles: list[Profile], sel: str) -> str:
    names = sorted({n for p in profiles for n in p.detect})
    return f"count by (__name__) ({{__name__=~{quote(names_regex(names))},{sel}}})"
