"""The fixed set of PromQL queries a profile needs, whatever the number of models or hosts:
every query groups by model (and instance) so one answer covers all of them."""

from __future__ import annotations

from dataclasses import dataclass

from vramtop.profiles import Profile, Series
from vramtop.sources.promql_syntax import counter_names, either, matcher, names_regex, quote

QUANTILES = (0.5, 0.95, 0.99)
INSTANCE_P95 = "latency.by_instance"
UP = "up"


@dataclass(frozen=True, slots=True)
class Query:
    profile: str
    # latency, requests, extras.ttft_p95_seconds, gpu, host, host.cpu_percent, up; INSTANCE_P95:
    # the p95 per (model, instance), for each replica's figures
    key: str
    expr: str
    quantile: float | None = None
    scale: float = 1.0
    combine: str = "sum"


def _sel(base: str, series_match: tuple[tuple[str, str], ...] = ()) -> str:
    return ",".join([*(matcher(k, v, regex=True) for k, v in series_match), base])


def model_queries(p: Profile, sel: str, window: str, host_label: str | None = None) -> list[Query]:
    """Model-level figures, plus one query for the p95 of each replica. ``host_label`` joins
    ``instance`` in every ``by`` that keeps the instance, so each host is known by it."""
    out: list[Query] = []
    label = p.model_label
    per = ", ".join(dict.fromkeys(x for x in (label, "instance", host_label) if x))
    for key, s in p.series.items():
        matchers = _sel(sel, s.match)
        if key == "latency":
            out.extend(_instance_p95(p, s, matchers, window, per))
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
                    f"{s.agg} by ({per}) (rate({name}{{{matchers}}}[{window}]))"
                    for m in s.metrics
                    for name in counter_names(m)
                )
            )
            out.append(Query(p.name, key, expr, None, s.scale, s.combine))
        elif s.kind == "gauge":
            expr = either(*(f"{s.agg} by ({per}) ({m}{{{matchers}}})" for m in s.metrics))
            out.append(Query(p.name, key, expr, None, s.scale, s.combine))
        else:  # mean of a duration counter over a count counter, per model
            out.append(Query(p.name, key, _mean(s, label, matchers, window), None, s.scale, "max"))
    return out


def _instance_p95(p: Profile, s: Series, matchers: str, window: str, per: str) -> list[Query]:
    """The p95 of each (model, instance): one query, whatever the number of hosts. A mean is no
    p95 (the model-level p95 never takes one either), and a series fixed at another quantile
    has none."""
    if s.quantile not in (None, 0.95):
        return []
    if s.kind == "histogram":
        expr = either(
            *(
                f"histogram_quantile(0.95, sum by (le, {per}) "
                f"(rate({m}_bucket{{{matchers}}}[{window}])))"
                for m in s.metrics
            )
        )
    elif s.kind == "summary":
        expr = either(*(f'max by ({per}) ({m}{{quantile="0.95",{matchers}}})' for m in s.metrics))
    else:
        return []
    return [Query(p.name, INSTANCE_P95, expr, 0.95, s.scale, "max")]


def up_query(sel: str) -> Query:
    """Every scrape target's health in one query: a host whose targets are all down is down."""
    return Query("", UP, f"up{{{sel}}}")


def last_up_query(instances: list[str], sel: str, lookback: str = "1h") -> str:
    """When each of these (down) targets last answered, to 10 s: a subquery over their ``up``
    series only (360 steps), asked once per host going down, never per refresh."""
    return (
        f"max_over_time(timestamp(up{{instance=~{quote(names_regex(instances))},{sel}}} == 1)"
        f"[{lookback}:10s])"
    )


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
