"""The Prometheus text format as the simulated servers write it: families of samples, each
counter a per-second slope that the exporter integrates over time."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from vramtop.demo.loads import MIB, GpuLoad, Latency, ModelLoad
from vramtop.records import record

TRITON_SUMMARY_QUANTILES = (0.5, 0.9, 0.95, 0.99)

Labels = tuple[tuple[str, str], ...]
Key = tuple[str, Labels]


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))  # the shortest text that parses back to the same float


@dataclass(slots=True)
class Family:
    name: str
    kind: str
    # (sample name, labels, value, grows): the value of a growing sample is a per-second slope.
    samples: list[tuple[str, Labels, float, bool]] = field(default_factory=list)


class Out:
    """Collects metric families in order of first appearance."""

    def __init__(self) -> None:
        self.families: dict[str, Family] = {}

    def _add(self, family: str, kind: str, sample: str, labels: dict, value: float, grows: bool):
        fam = self.families.setdefault(family, Family(family, kind))
        fam.samples.append((sample, tuple(labels.items()), value, grows))

    def gauge(self, name: str, labels: dict[str, str], value: float) -> None:
        self._add(name, "gauge", name, labels, value, False)

    def counter(self, name: str, labels: dict[str, str], per_second: float) -> None:
        self._add(name, "counter", name, labels, per_second, True)

    def histogram(self, name: str, labels: dict, dist: Latency, per_second: float, usual) -> None:
        for bound in [*dist.bounds(usual), math.inf]:
            le = {**labels, "le": format_value(bound)}
            self._add(name, "histogram", f"{name}_bucket", le, per_second * dist.cdf(bound), True)
        self._add(name, "histogram", f"{name}_sum", labels, per_second * dist.mean, True)
        self._add(name, "histogram", f"{name}_count", labels, per_second, True)

    def summary_us(self, name: str, labels: dict, dist: Latency, per_second: float) -> None:
        for q in TRITON_SUMMARY_QUANTILES:
            ql = {**labels, "quantile": format_value(q)}
            self._add(name, "summary", name, ql, dist.quantile(q) * 1e6, False)
        self._add(name, "summary", f"{name}_sum", labels, per_second * dist.mean * 1e6, True)
        self._add(name, "summary", f"{name}_count", labels, per_second, True)


def at(labels: dict[str, str], instance: str | None) -> dict[str, str]:
    return labels if instance is None else {**labels, "instance": instance}


@record
class Options:
    host: str
    legacy: bool
    counter_suffix: str
    hostname_label: str
    triton_summaries: bool


Models = Sequence[ModelLoad]
Gpus = Sequence[GpuLoad]


def by_p95(p95: float | None) -> Latency | None:
    return None if p95 is None else Latency.from_p95(p95)


def whole_mib(n: int) -> int:
    return n // MIB * MIB
