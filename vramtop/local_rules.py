"""Alerts without Prometheus: rules on Frame figures, evaluated in-process frame after frame.

A rule names a figure of a model, a GPU or a host (``model.queue_length``), a comparison and a
threshold (a number, or the name of a target in Settings.targets), and how long the condition
must hold (``for``). Each (rule, subject) goes inactive -> pending (condition true; the alert's
``active_since`` is the first frame it was true) -> firing (true for at least ``for``) and is
gone (resolved) on the first frame it is not true. A figure that could not be read is not true:
a missing queue length never counts as 0. No PromQL: the figures are the ones vramtop shows.
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

from vramtop import durations, units
from vramtop.links import MODEL_LABELS, is_web
from vramtop.model import (
    AlertReading,
    Frame,
    GpuReading,
    HostReading,
    ModelReading,
    alert_order,
)
from vramtop.records import record

SOURCE = "local"


def _ratio(used: int | None, total: int | None) -> float | None:
    return used / total if used is not None and total else None


def _host_cpu(h: HostReading) -> float | None:
    return None if h.cpu_percent is None else h.cpu_percent / 100.0


# figure -> (how to read it from its subject, how its value is written in a summary)
_Get = Callable[[Any], float | int | None]
MODEL_FIGURES: dict[str, tuple[_Get, Callable[[float], str]]] = {
    "queue_length": (lambda m: m.queue_length, units.count),
    "latency_p50_seconds": (lambda m: m.latency_p50_seconds, units.seconds),
    "latency_p95_seconds": (lambda m: m.latency_p95_seconds, units.seconds),
    "latency_p99_seconds": (lambda m: m.latency_p99_seconds, units.seconds),
    "error_ratio": (lambda m: m.error_ratio, units.ratio),
    "requests_per_second": (lambda m: m.requests_per_second, units.rate),
    "vram_bytes": (lambda m: m.vram_bytes, units.size),
}
GPU_FIGURES: dict[str, tuple[_Get, Callable[[float], str]]] = {
    "memory_fraction": (lambda g: g.memory_fraction, units.ratio),
    "memory_used_bytes": (lambda g: g.memory_used_bytes, units.size),
    "utilization_percent": (lambda g: g.utilization_percent, units.percent),
    "memory_utilization_percent": (lambda g: g.memory_utilization_percent, units.percent),
    "temperature_c": (lambda g: g.temperature_c, lambda v: units.figure(v) + " °C"),
    "power_watts": (lambda g: g.power_watts, lambda v: units.figure(v) + " W"),
}
HOST_FIGURES: dict[str, tuple[_Get, Callable[[float], str]]] = {
    "cpu_ratio": (_host_cpu, units.ratio),
    "memory_fraction": (lambda h: _ratio(h.memory_used_bytes, h.memory_total_bytes), units.ratio),
    "disk_fraction": (lambda h: _ratio(h.disk_used_bytes, h.disk_total_bytes), units.ratio),
}
FIGURES = {"model": MODEL_FIGURES, "gpu": GPU_FIGURES, "host": HOST_FIGURES}
ALL_FIGURES = tuple(f"{kind}.{name}" for kind, figs in FIGURES.items() for name in figs)
# What a summary may name, per kind of subject; value and threshold are written with units.
PLACEHOLDERS = {
    "model": ("model", "instance", "value", "threshold"),
    "gpu": ("gpu", "uuid", "instance", "value", "threshold"),
    "host": ("instance", "value", "threshold"),
}
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}
SEVERITIES = ("critical", "warning", "info")
PLAIN_SUMMARY = "{figure} is {value} (limit {threshold})"  # a rule that gives none


@record
class LocalRule:
    """``threshold``: a number, or a target name (a field of config.Targets)."""

    name: str
    figure: str  # kind.figure, e.g. model.queue_length
    comparison: str
    threshold: float | str
    for_seconds: float = 0.0
    severity: str = "warning"
    summary: str = ""
    runbook_url: str | None = None

    @property
    def kind(self) -> str:
        return self.figure.split(".", 1)[0]


# The seed backend's alert rules (vramtop/rules/facesocial.rules.yml) on Frame figures, with
# the thresholds read from Settings.targets so that one [targets] table moves both.
DEFAULT_RULES: tuple[LocalRule, ...] = (
    LocalRule(
        "VRAMExhausted",
        "gpu.memory_fraction",
        ">",
        "vram_critical_ratio",
        30.0,
        "critical",
        "VRAM of GPU {gpu} is {value} used (limit {threshold})",
    ),
    LocalRule(
        "HighErrorRate",
        "model.error_ratio",
        ">",
        "error_ratio_critical",
        120.0,
        "critical",
        "{value} of requests to {model} fail (limit {threshold})",
    ),
    LocalRule(
        "HighCPUUsage",
        "host.cpu_ratio",
        ">",
        "cpu_warning_ratio",
        300.0,
        "warning",
        "CPU of {instance} is {value} busy (limit {threshold})",
    ),
    LocalRule(
        "SlowAPIResponse",
        "model.latency_p95_seconds",
        ">",
        "latency_p95_warning_seconds",
        180.0,
        "warning",
        "p95 latency of {model} is {value} (limit {threshold})",
    ),
    LocalRule(
        "ModelQueueBacklog",
        "model.queue_length",
        ">",
        "queue_length_warning",
        120.0,
        "warning",
        "Model {model} has {value} requests queued (limit {threshold})",
    ),
)


# ---- reading [[rules]] from the config file ----

_FIELDS = ("name", "figure", "comparison", "threshold", "for", "severity", "summary")
_MORE_FIELDS = ("runbook_url", "enabled")


class RuleError(ValueError):
    """One sentence naming the rule and the field at fault."""


def parse_rules(
    value: Any,
    target_names: Iterable[str],
    defaults: Sequence[LocalRule] = DEFAULT_RULES,
) -> tuple[LocalRule, ...]:
    """The defaults with the file's ``[[rules]]`` applied: an entry named like a default
    replaces the fields it gives (``enabled = false`` drops it); any other name is a new rule
    and must give figure, comparison and threshold. RuleError says what is wrong."""
    if not isinstance(value, list):
        raise RuleError("must be a list of tables ([[rules]])")
    targets = tuple(target_names)
    rules = {r.name: r for r in defaults}
    seen: set[str] = set()
    for i, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise RuleError(f"entry {i + 1} is not a table")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip() or not _plain_name(name):
            raise RuleError(
                f"entry {i + 1}: field 'name' must be an alert name (letters, digits, _ and :), "
                f"got {_show(name)}"
            )
        where = f"rule {name!r}"
        if name in seen:
            raise RuleError(f"{where} is given twice")
        seen.add(name)
        unknown = sorted(set(entry) - set(_FIELDS) - set(_MORE_FIELDS))
        if unknown:
            known = ", ".join(_FIELDS + _MORE_FIELDS)
            raise RuleError(f"{where}: unknown field {unknown[0]!r} (known: {known})")
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            raise RuleError(f"{where}: field 'enabled' must be true or false, got {_show(enabled)}")
        if not enabled:
            rules.pop(name, None)
            continue
        rules[name] = _rule(where, name, entry, rules.get(name), targets)
    return tuple(rules.values())


def _plain_name(name: str) -> bool:
    return all(c.isalnum() or c in "_:" for c in name) and name.isascii()


def _show(raw: Any) -> str:
    from vramtop import redact

    return redact.cut(redact.text(repr(raw)))


def _rule(
    where: str, name: str, entry: dict, base: LocalRule | None, targets: tuple[str, ...]
) -> LocalRule:
    def pick(field: str) -> Any:
        """The entry's value, else the shipped rule's; a new rule must give it."""
        if field in entry:
            return entry[field]
        if base is None:
            raise RuleError(
                f"{where}: field {field!r} is missing (a new rule needs figure, "
                "comparison and threshold)"
            )
        return getattr(base, field)

    figure = pick("figure")
    if not isinstance(figure, str) or figure not in ALL_FIGURES:
        raise RuleError(
            f"{where}: field 'figure' must be one of {', '.join(ALL_FIGURES)}, got {_show(figure)}"
        )
    comparison = pick("comparison")
    if comparison not in COMPARISONS:
        raise RuleError(
            f"{where}: field 'comparison' must be one of >, >=, <, <=, got {_show(comparison)}"
        )
    threshold = pick("threshold")
    if isinstance(threshold, str):
        if threshold not in targets:
            raise RuleError(
                f"{where}: field 'threshold' must be a number or a target name "
                f"({', '.join(targets)}), got {_show(threshold)}"
            )
    elif (
        isinstance(threshold, bool)
        or not isinstance(threshold, int | float)
        or not math.isfinite(threshold)
    ):
        raise RuleError(
            f"{where}: field 'threshold' must be a number or a target name, got {_show(threshold)}"
        )
    else:
        threshold = float(threshold)
    for_seconds = base.for_seconds if base else 0.0
    if "for" in entry:
        try:
            for_seconds = durations.parse(entry["for"], durations.SPAN)
        except ValueError:
            raise RuleError(
                f'{where}: field \'for\' must be a duration like "2m" or "30s", '
                f"got {_show(entry['for'])}"
            ) from None
    severity = entry.get("severity", base.severity if base else "warning")
    if not isinstance(severity, str) or severity not in SEVERITIES:
        raise RuleError(
            f"{where}: field 'severity' must be one of {', '.join(SEVERITIES)}, "
            f"got {_show(severity)}"
        )
    kind = figure.split(".", 1)[0]
    summary = entry.get("summary")
    if summary is None:
        # A default's summary names its own kind of subject; a new figure gets a plain one.
        same_kind = base is not None and base.kind == kind
        summary = base.summary if same_kind else ""
    if not isinstance(summary, str):
        raise RuleError(f"{where}: field 'summary' must be text, got {_show(summary)}")
    problem = template_problem(summary, PLACEHOLDERS[kind])
    if problem:
        raise RuleError(f"{where}: field 'summary' {problem}")
    runbook = entry.get("runbook_url", base.runbook_url if base else None)
    if runbook is not None and not is_web(runbook):
        raise RuleError(
            f"{where}: field 'runbook_url' must be an http:// or https:// URL, got {_show(runbook)}"
        )
    return LocalRule(name, figure, comparison, threshold, for_seconds, severity, summary, runbook)


def template_problem(template: str, allowed: Sequence[str]) -> str | None:
    """Why ``template`` is not a plain ``{name}`` template over ``allowed``, or None. No
    attribute, index, conversion or format spec: text from outside is substituted, never
    interpreted."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as err:
        return f"is not a valid template ({err}; write a literal brace as {{{{ or }}}})"
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in allowed or spec or conversion:
            shown = "{" + field + (f"!{conversion}" if conversion else "")
            shown += (f":{spec}" if spec else "") + "}"
            return (
                f"has an unknown placeholder {shown!r} "
                f"(known here: {', '.join('{' + a + '}' for a in allowed)})"
            )
    return None


def fill(template: str, values: Mapping[str, str]) -> str:
    """``template`` (checked by template_problem) with each ``{name}`` replaced by its value as
    it is: a value holding braces or ``[b]`` stays text."""
    out = []
    for literal, field, _, _ in string.Formatter().parse(template):
        out.append(literal)
        if field is not None:
            out.append(values.get(field, ""))
    return "".join(out)


# ---- evaluation ----


@record
class _Subject:
    """What one rule is evaluated on: its labels, its reading and the words of its text."""

    labels: tuple[tuple[str, str], ...]
    reading: Any
    words: Mapping[str, str]  # placeholder values


def _subjects(kind: str, frame: Frame) -> Iterable[_Subject]:
    here = frame.host.hostname
    if kind == "model":
        for m in frame.models:
            yield _Subject((("model", m.name),), m, _model_words(m, here))
    elif kind == "gpu":
        for g in frame.gpus:
            yield _Subject(_gpu_labels(g), g, _gpu_words(g, here))
    else:
        yield _Subject((("instance", here),), frame.host, {"instance": here})
        for h in frame.hosts:
            key = h.instance or h.hostname
            if key != here:
                yield _Subject((("instance", key),), h, {"instance": key})


def _model_words(m: ModelReading, here: str) -> dict[str, str]:
    return {"model": m.name, "instance": ", ".join(m.instances) or here}


def _gpu_labels(g: GpuReading) -> tuple[tuple[str, str], ...]:
    labels = [("gpu", str(g.index))] + ([("uuid", g.uuid)] if g.uuid else [])
    if g.host is not None:
        labels.append(("instance", g.host))
    return tuple(labels)


def _gpu_words(g: GpuReading, here: str) -> dict[str, str]:
    return {"gpu": str(g.index), "uuid": g.uuid or "", "instance": g.host or here}


class LocalRules:
    """The rules' state between frames: when each (rule, subject) was first seen true."""

    def __init__(self, rules: Sequence[LocalRule], targets: Any) -> None:
        """``targets``: config.Targets; a rule whose threshold names one reads it here."""
        self.rules = tuple(rules)
        self._thresholds = {
            r.name: float(getattr(targets, r.threshold))
            if isinstance(r.threshold, str)
            else float(r.threshold)
            for r in self.rules
        }
        self._since: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def threshold(self, rule: LocalRule) -> float:
        return self._thresholds[rule.name]

    def evaluate(self, frame: Frame) -> tuple[AlertReading, ...]:
        """The pending and firing alerts at ``frame.time``; whatever is not true any more is
        forgotten (resolved), so a new breach starts pending again."""
        now = frame.time
        since: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        alerts = []
        for rule in self.rules:
            kind, name = rule.figure.split(".", 1)
            get, write = FIGURES[kind][name]
            limit = self._thresholds[rule.name]
            compare = COMPARISONS[rule.comparison]
            for subject in _subjects(kind, frame):
                value = get(subject.reading)
                if value is None or not math.isfinite(value) or not compare(value, limit):
                    continue
                key = (rule.name, subject.labels)
                start = self._since.get(key, now)
                start = min(start, now)  # a clock stepped back: no negative age
                since[key] = start
                words = {
                    **subject.words,
                    "figure": rule.figure,
                    "value": write(value),
                    "threshold": write(limit),
                }
                alerts.append(
                    AlertReading(
                        name=rule.name,
                        severity=rule.severity,
                        state="firing" if now - start >= rule.for_seconds else "pending",
                        summary=fill(rule.summary or PLAIN_SUMMARY, words),
                        labels=MappingProxyType(dict(subject.labels)),
                        active_since=start,
                        source=SOURCE,
                        runbook_url=rule.runbook_url,
                    )
                )
        self._since = since
        return tuple(alerts)


# ---- beside Prometheus's alerts ----


def covered(local: AlertReading, remote: Iterable[AlertReading], here: str | None = None) -> bool:
    """A Prometheus or Alertmanager alert of the same name about the same subject (model label,
    GPU index or UUID, instance without its port; a loopback instance is this machine, ``here``)
    makes the local one redundant."""
    from vramtop.fleet import host_key, this_machine

    mine = dict(local.labels)
    for other in remote:
        if other.name != local.name or other.source in (SOURCE, "nvml"):
            continue
        theirs = other.labels
        if "model" in mine and not any(theirs.get(k) == mine["model"] for k in MODEL_LABELS):
            continue
        if "gpu" in mine:
            other_uuid = theirs.get("uuid") or theirs.get("UUID")
            if mine.get("uuid") and other_uuid:
                if other_uuid != mine["uuid"]:
                    continue
            elif theirs.get("gpu") != mine["gpu"]:
                continue
        if "instance" in mine:
            key = host_key(theirs.get("instance"))
            same = key == host_key(mine["instance"])
            if not same and not (here and mine["instance"] == here and this_machine(key, here)):
                continue
        return True
    return False


def merge(
    alerts: Sequence[AlertReading], local: Iterable[AlertReading], here: str | None = None
) -> tuple[AlertReading, ...]:
    """``alerts`` plus the local alerts no remote alert covers, in alert order. ``here``: this
    machine's hostname (the instance of its host rules)."""
    kept = [a for a in local if not covered(a, alerts, here)]
    return tuple(sorted((*alerts, *kept), key=alert_order))
