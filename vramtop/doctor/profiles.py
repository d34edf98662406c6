"""Which of each profile's metrics exist among the names a server (or Prometheus) has, and a
starter profile for a family no profile knows, built from its metrics with a model-like label."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from vramtop.doctor import FAIL, PASS, WARN, Report
from vramtop.profiles import Profile, Series

# A metric exists under its own name or one of the sample names its type adds.
_SUFFIXES = ("", "_total", "_bucket", "_count", "_sum")
MODEL_LABEL = re.compile(r"model", re.IGNORECASE)
_TYPE = re.compile(r"^#\s+TYPE\s+(\S+)\s+(\w+)", re.MULTILINE)


def exists(metric: str, names: set[str]) -> bool:
    base = metric.removesuffix("_total")
    return any(base + s in names or metric + s in names for s in _SUFFIXES)


def wanted(profile: Profile) -> dict[str, tuple[str, ...]]:
    """Each figure of a profile and the metric names that can fill it (the first that exists)."""
    out: dict[str, tuple[str, ...]] = {}
    for key, s in profile.series.items():
        out[key] = _series_names(s)
    for key, f in profile.fields.items():
        out[f"fields.{key}"] = (f.metric,)
    return out


def _series_names(s: Series) -> tuple[str, ...]:
    return (*s.metrics, *s.mean_count) if s.kind == "mean" else s.metrics


def check_profiles(
    report: Report,
    profiles: Sequence[Profile],
    forced: bool,
    names: set[str],
    where: str,
    cardinality: Callable[[Profile, str], int | None] | None = None,
    scraped: bool = False,
) -> bool:
    """One line per profile in use; True when some model profile's family was found.
    ``scraped``: the names come from one server's /metrics, not from Prometheus."""
    known = False
    for p in profiles:
        figures = wanted(p)
        detected = any(exists(m, names) for m in p.detect) or (
            not p.detect and any(exists(m, names) for ms in figures.values() for m in ms)
        )
        if not detected and not forced:
            continue
        missing = [k for k, ms in figures.items() if not any(exists(m, names) for m in ms)]
        name = f"profile {p.name}"
        if not detected:
            report.add(FAIL, name, f"none of its metrics ({', '.join(p.detect)}) is on {where}.")
            continue
        known = known or p.kind == "model"
        if missing:
            listed = "; ".join(f"{k} ({' or '.join(figures[k])})" for k in missing)
            report.add(
                WARN,
                name,
                f"{len(figures) - len(missing)} of {len(figures)} figures found on {where}; "
                f"missing: {listed}.",
            )
        else:
            report.add(PASS, name, f"all {len(figures)} figures found on {where}.")
        if p.kind == "model" and cardinality is not None:
            _check_cardinality(report, p, figures, names, cardinality, scraped)
    return known


def _check_cardinality(
    report: Report,
    p: Profile,
    figures: dict[str, tuple[str, ...]],
    names: set[str],
    count: Callable[[Profile, str], int | None],
    scraped: bool,
) -> None:
    metric = next((m for ms in figures.values() for m in ms if exists(m, names)), None)
    if metric is None:
        return
    n = count(p, metric)
    name = f"profile {p.name} label {p.model_label}"
    if n is None:
        return
    if n == 0:
        fix = "relabel it, or set model_label in a profile of your own"
        if p.model_label == "job" and scraped:
            fix = (
                "read directly, nothing names the model: read it through Prometheus, whose "
                "job label does"
            )
        report.add(
            WARN,
            name,
            f"{metric} carries no {p.model_label!r} label, so no figure is per model ({fix}).",
        )
    elif n > 100:
        report.add(WARN, name, f"{n} distinct values on {metric}: a high label cardinality.")
    else:
        report.add(PASS, name, f"{n} model(s) on {metric}.")


def starter_profile(text: str, samples: dict[str, dict], where: str) -> str | None:
    """A profile TOML from the histograms, counters and gauges of one /metrics answer that
    carry a model-like label; None when no metric has one."""
    labelled = {sample: {k for key in series for k, _ in key} for sample, series in samples.items()}
    return starter_from(dict(_TYPE.findall(text)), labelled, where)


def starter_from(types: dict[str, str], labelled: dict[str, set[str]], where: str) -> str | None:
    """``types``: family name -> histogram, counter, gauge... (TYPE lines, or Prometheus's
    metadata); ``labelled``: sample name -> its label names. None when no metric has a
    model-like label."""
    label = None
    chosen: dict[str, str] = {}  # metric -> histogram, counter or gauge
    for sample in labelled:
        model = next((k for k in sorted(labelled[sample]) if MODEL_LABEL.search(k)), None)
        if model is None:
            continue
        metric, kind = _family(sample, types)
        if kind is None or metric in chosen:
            continue
        label = label or model
        chosen[metric] = kind
    if not chosen:
        return None
    return _toml(chosen, label or "model", where)


def namespace(metric: str) -> str:
    """A metric's server family as its name says it: ``vllm`` of ``vllm:x``, ``nv`` of
    ``nv_inference_count``."""
    return metric.split(":", 1)[0] if ":" in metric else metric.split("_", 1)[0]


def known_namespaces(profiles: Sequence[Profile]) -> set[str]:
    names: set[str] = set()
    for p in profiles:
        names.update(p.detect)
        for metrics in wanted(p).values():
            names.update(metrics)
    return {namespace(n) for n in names}


def _family(sample: str, types: dict[str, str]) -> tuple[str, str | None]:
    for suffix in ("_bucket", "_count", "_sum"):
        base = sample.removesuffix(suffix)
        if base != sample and types.get(base) == "histogram":
            return base, "histogram" if suffix == "_bucket" else None
    if sample.endswith("_created"):
        return sample, None
    base = sample.removesuffix("_total")
    kind = types.get(sample) or types.get(base)
    if kind == "counter" or (kind is None and sample.endswith("_total")):
        return sample, "counter"
    if kind in ("gauge", None, "untyped"):
        return sample, "gauge"
    return sample, None


def _toml(chosen: dict[str, str], label: str, where: str) -> str:
    lines = [
        f"# Starter profile written by `vramtop doctor` from {where}: check what each metric",
        "# means, keep what fits, and save it as $XDG_CONFIG_HOME/vramtop/profiles/custom.toml",
        'name = "custom"',
        'kind = "model"',
        'description = "starter profile from vramtop doctor"',
        f"model_label = {_q(label)}",
        f"detect = [{_q(next(iter(chosen)))}]",
    ]
    by_kind = {k: [m for m, kind in chosen.items() if kind == k] for k in ("histogram", "counter")}
    taken = set()
    for figure, kind in (("latency", "histogram"), ("requests", "counter")):
        if by_kind[kind]:
            metric = by_kind[kind][0]
            taken.add(metric)
            lines += ["", f"[{figure}]", f"{kind} = [{_q(metric)}]"]
    keys: set[str] = set()
    for metric, kind in chosen.items():
        if metric in taken:
            continue
        key = _key(metric, keys)
        lines += ["", f"[extras.{key}]", f"{kind} = [{_q(metric)}]"]
        if kind == "histogram":
            lines.append("quantile = 0.95")
    return "\n".join(lines) + "\n"


def _key(metric: str, keys: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_]+", "_", metric).strip("_") or "metric"
    key, n = base, 2
    while key in keys:
        key, n = f"{base}_{n}", n + 1
    keys.add(key)
    return key


def _q(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
