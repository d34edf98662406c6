"""The fixed set of PromQL queries a profile needs, whatever the number of models or hosts:
every query groups by model (and instance) so one answer covers all of them."""

from __future__ import annotations

from collections.abc import Sequence

from vramtop.profiles import Field, Profile, Series
from vramtop.records import record
from vramtop.sources import remote_health
from vramtop.sources.promql_syntax import counter_names, either, matcher, names_regex, quote

QUANTILES = (0.5, 0.95, 0.99)
INSTANCE_P95 = "latency.by_instance"
UP = "up"
# A histogram's bucket rates summed per model: its quantiles are computed from them here
# (promquantile.py), one rate() for p50, p95 and p99 where histogram_quantile needs one each.
BUCKETS = "buckets"
ALT = "__vramtop_alt"  # which of a histogram's alternative names a bucket series came from
# The figures each replica (model, instance) is shown with (InstanceFigures); the others are
# summed or maxed per model in Prometheus: at 1000 hosts one series per model, not per replica.
PER_REPLICA = frozenset({"vram", "queue", "requests", "successes", "errors"})


@record
class Query:
    profile: str
    # latency, requests, extras.ttft_p95_seconds, gpu, host, host.cpu_percent, up; INSTANCE_P95:
    # the p95 per (model, instance), for each replica's figures
    key: str
    expr: str
    quantile: float | None = None
    scale: float = 1.0
    combine: str = "sum"
    # BUCKETS: the (key, quantile, scale) each answer stands for, as histogram_quantile's would
    targets: tuple[tuple[str, float, float], ...] = ()
    # seconds an answer may be reused for (remote_health.SLOW_TTL); 0: asked every refresh
    every: float = 0.0
    # a rate over every bucket of a histogram, the costliest evaluation by far: not in the
    # profile's request, so that Prometheus evaluates it in parallel (one request is one
    # evaluation)
    heavy: bool = False
    # A field an earlier GPU exporter also reports: (its metric, its UUID label) for each;
    # this query asks only for the GPUs none of them has a number for (see promshadow.py).
    defers_to: tuple[tuple[str, str], ...] = ()
    # in a request of its own, not tagged and joined with the profile's other queries: a GPU
    # exporter's figures, one series per GPU and field, a fleet's largest answer by far. At
    # 1000 hosts the tag and the ``or`` over DCGM's 48,000 series cost Prometheus ~100 ms of
    # CPU over the ~250 ms of the figures themselves, and 1.2 MB more of answer.
    alone: bool = False


def _sel(base: str, series_match: tuple[tuple[str, str], ...] = ()) -> str:
    return ",".join([*(matcher(k, v, regex=True) for k, v in series_match), base])


def model_queries(
    p: Profile, sel: str, window: str, host_label: str | None = None, buckets: bool = False
) -> list[Query]:
    """Model-level figures, plus one query for the p95 of each replica. ``host_label`` joins
    ``instance`` in every ``by`` that keeps the instance, so each host is known by it. With
    ``buckets``, a histogram's model-level quantiles come from one BUCKETS query per histogram
    (the figures that share its metrics share it too) instead of one query per quantile."""
    out: list[Query] = []
    histograms: dict[tuple[tuple[str, ...], str], list[tuple[str, float, float]]] = {}
    label = p.model_label
    per = ", ".join(dict.fromkeys(x for x in (label, "instance", host_label) if x))
    for key, s in p.series.items():
        matchers = _sel(sel, s.match)
        if key == "latency":
            out.extend(_instance_p95(p, s, matchers, window, per))
        if s.kind == "histogram":
            quantiles = (s.quantile,) if s.quantile else QUANTILES
            if buckets:
                targets = histograms.setdefault((s.metrics, matchers), [])
                targets.extend((key, q, s.scale) for q in quantiles)
                continue
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
        elif s.kind in ("counter", "gauge"):
            names = [n for m in s.metrics for n in counter_names(m)] if s.kind == "counter" else []
            rated = [f"rate({n}{{{matchers}}}[{window}])" for n in names] or [
                f"{m}{{{matchers}}}" for m in s.metrics
            ]
            expr = either(*(f"{s.agg} by ({per}) ({e})" for e in rated))
            if key not in PER_REPLICA:  # what promreadings.models does with the replicas'
                expr = f"{'max' if s.combine == 'max' else 'sum'} by ({label}) ({expr})"
            out.append(Query(p.name, key, expr, None, s.scale, s.combine))
        else:  # mean of a duration counter over a count counter, per model
            out.append(Query(p.name, key, _mean(s, label, matchers, window), None, s.scale, "max"))
    for (metrics, matchers), targets in histograms.items():
        out.append(_buckets(p, metrics, matchers, window, tuple(targets)))
    return out


def _buckets(
    p: Profile,
    metrics: tuple[str, ...],
    matchers: str,
    window: str,
    targets: tuple[tuple[str, float, float], ...],
) -> Query:
    """Bucket rates per (le, model). Alternatives (renamed metrics) are each tagged with ALT
    rather than joined with a bare ``or``, which would mix two layouts' buckets in one model."""
    sums = [
        f"sum by (le, {p.model_label}) (rate({m}_bucket{{{matchers}}}[{window}]))" for m in metrics
    ]
    expr = (
        sums[0]
        if len(sums) == 1
        else " or ".join(f'label_replace({e}, "{ALT}", "{i}", "", "")' for i, e in enumerate(sums))
    )
    return Query(p.name, BUCKETS, expr, targets=targets, heavy=True)


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
    heavy = s.kind == "histogram"
    return [Query(p.name, INSTANCE_P95, expr, 0.95, s.scale, "max", heavy=heavy)]


def up_query(sel: str) -> Query:
    """Every scrape target's health in one query: a host whose targets are all down is down."""
    return Query("", UP, f"up{{{sel}}}")


def last_up_query(instances: list[str], sel: str, lookback: str = "1h") -> str:
    """When each of these (down) targets last answered, to 10 s: a subquery over their ``up``
    series only (360 steps), asked once per host going down, never per refresh. ``timestamp``
    of the selector itself is the scrape's time; of ``up == 1`` it would be the step's, which
    can fall after the target stopped (its last sample is still the latest there)."""
    up = f"up{{instance=~{quote(names_regex(instances))},{sel}}}"
    return f"max_over_time((timestamp({up}) and {up} == 1)[{lookback}:10s])"


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


def field_queries(
    p: Profile,
    sel: str,
    window: str,
    before: Sequence[Profile] = (),
    host_label: str | None = None,
) -> list[Query]:
    """GPU and host exporters: every plain field in ONE query (selected by metric name; the
    slow health fields in a second, reused for remote_health.SLOW_TTL), plus one query per
    derived expression. ``before``: the GPU profiles whose value of a field wins over this
    one's (they come first): see _shadowed. ``host_label``: the label naming a host, kept
    where a GPU's fields drop the labels nobody reads (_read_labels)."""
    plain = {k: f for k, f in p.fields.items() if not f.match}
    out = []
    if plain:
        shadowed = _shadowed(p, plain, before)
        kept = [k for k in plain if k not in shadowed]
        for keys, every in (
            ([k for k in kept if k not in remote_health.SLOW], 0.0),
            ([k for k in kept if k in remote_health.SLOW], remote_health.SLOW_TTL),
        ):
            if keys:
                names = quote(names_regex([plain[k].metric for k in keys]))
                expr = f"{{__name__=~{names},{sel}}}"
                alone = not every and p.kind == "gpu"
                if alone and p.uuid_label:
                    expr = _read_labels(p, expr, host_label)
                    out.append(Query(p.name, p.kind, _gpu_labels(p, plain, keys, sel, host_label)))
                out.append(Query(p.name, p.kind, expr, every=every, alone=alone))
        # One query each, not joined with ``or``: that matches series without their names,
        # and would drop one GPU's temperature for having its memory.
        for key, by in shadowed.items():
            expr = f"{plain[key].metric}{{{sel}}}"
            for metric, uuid in by:
                expr += (
                    f" unless on ({p.uuid_label}) label_replace({metric}{{{sel}}} >= -Inf, "
                    f'{quote(p.uuid_label or "")}, "$1", {quote(uuid)}, "(.*)")'
                )
            out.append(Query(p.name, p.kind, expr, defers_to=tuple(by)))
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


def _read_labels(p: Profile, expr: str, host_label: str | None) -> str:
    """A GPU exporter's every-refresh fields with only the labels that tell its series apart:
    dcgm-exporter's also carry the GPU's name and index, the host, device, PCI bus id, driver
    version, job and Kubernetes labels, the same on each of a GPU's series: at 8,000 GPUs more
    than half of the answer's bytes, and Prometheus's aggregation over them most of its CPU
    for the request. The GPU's own labels come once per GPU from _gpu_labels. MIG instances
    (GPU_I_ID) stay apart; series that differ only in dropped labels (a GPU scraped by two
    jobs) hold the same reading. The slow health fields are left whole: NVLink's are one per
    link."""
    by = ", ".join(dict.fromkeys(x for x in ("__name__", *_KEY, p.uuid_label, host_label) if x))
    return f"max by ({by}) ({expr})"


_KEY = ("instance", "GPU_I_ID")  # with the UUID: which GPU (or MIG instance) a series is


def _gpu_labels(
    p: Profile, plain: dict[str, Field], keys: list[str], sel: str, host_label: str | None
) -> str:
    """Each GPU's name, index and host labels, once per GPU (value 1, no metric name): from its
    memory series, which every GPU exporter has for every GPU (else from every field asked)."""
    memory = [plain[k].metric for k in keys if k.startswith("memory_")]
    names = quote(names_regex(memory or [plain[k].metric for k in keys]))
    labels = (*_KEY, p.uuid_label, p.name_label, p.index_label, *p.host_labels, host_label)
    by = ", ".join(dict.fromkeys(x for x in labels if x))
    return f"group by ({by}) ({{__name__=~{names},{sel}}})"


def _shadowed(
    p: Profile, plain: dict[str, Field], before: Sequence[Profile]
) -> dict[str, list[tuple[str, str]]]:
    """The plain fields an earlier GPU profile also has: field -> [(its metric, its uuid
    label)]. Where that profile reports the field for the same UUID, its value wins the merge
    (promreadings.gpus), so this profile's series for that GPU are not asked for: a fleet with
    DCGM and vramtop's exporter on every host would otherwise send each GPU's figures twice.
    The UUIDs must be equal as text (a GPU whose UUIDs differ only in form is asked for twice,
    as before) and the value a number (NaN is no reading). Health fields are never shadowed:
    their sentinels are filtered after the answer."""
    if p.kind != "gpu" or not p.uuid_label:
        return {}
    out: dict[str, list[tuple[str, str]]] = {}
    for q in before:
        if q.kind != "gpu" or not q.uuid_label or q is p:
            continue
        for key in plain:
            f = q.fields.get(key)
            if f is not None and not f.match and key not in remote_health.KEYS:
                out.setdefault(key, []).append((f.metric, q.uuid_label))
    return out


def detect_query(profiles: list[Profile], sel: str) -> str:
    names = sorted({n for p in profiles for n in p.detect})
    return f"count by (__name__) ({{__name__=~{quote(names_regex(names))},{sel}}})"
