"""The exporter behind ``--serve-metrics``: the latest Frame rendered as Prometheus metric
families by prometheus_client (which also picks text or OpenMetrics per scrape).

A scrape only reads the Frame last handed to ``update``; collection runs on its own schedule,
so scrapes cost no collection. Readings that are unavailable are left out, never sent as 0,
and command lines are never exported (a process is its pid, user and model).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from vramtop import __version__
from vramtop.model import Frame, GpuReading

GPU_LABELS = ["gpu", "gpu_uuid", "name"]


class FrameExporter(Collector):
    """A prometheus_client collector over the latest Frame (None until the first one)."""

    def __init__(self, processes: bool = False) -> None:
        self.processes = processes  # per-pid series: the operator's choice of cardinality
        self._frame: Frame | None = None

    def update(self, frame: Frame) -> None:
        self._frame = frame  # one reference swap: a scrape sees one whole Frame or the previous

    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "vramtop_build_info", "vramtop's version; always 1.", labels=["version"]
        )
        info.add_metric([__version__], 1)
        yield info
        frame = self._frame
        if frame is None:  # before the first collection: nothing is known yet
            return
        up = GaugeMetricFamily(
            "vramtop_source_up",
            "1 if the source's last reading was good, else 0.",
            labels=["source"],
        )
        for s in frame.sources:
            up.add_metric([s.name], 1 if s.state == "ok" else 0)
        yield up
        # GPUs read through Prometheus belong to their own hosts' exporters.
        gpus = [g for g in frame.gpus if g.host is None]
        yield from _gpu_families(gpus)
        yield from _model_families(frame, gpus)
        if self.processes:
            yield _process_family(gpus)


def registry_for(exporter: FrameExporter) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(exporter)
    return registry


def _gpu_labels(g: GpuReading) -> list[str]:
    return [str(g.index), g.uuid or "", g.name or ""]


def _gpu_families(gpus: list[GpuReading]) -> Iterator[Metric]:
    used = GaugeMetricFamily(
        "vramtop_gpu_memory_used_bytes", "GPU memory in use, bytes.", labels=GPU_LABELS
    )
    total = GaugeMetricFamily(
        "vramtop_gpu_memory_total_bytes", "GPU memory in all, bytes.", labels=GPU_LABELS
    )
    util = GaugeMetricFamily(
        "vramtop_gpu_utilization_ratio", "GPU utilisation, 0 to 1.", labels=GPU_LABELS
    )
    temp = GaugeMetricFamily(
        "vramtop_gpu_temperature_celsius", "GPU core temperature, degrees C.", labels=GPU_LABELS
    )
    power = GaugeMetricFamily(
        "vramtop_gpu_power_watts", "GPU power draw, watts.", labels=GPU_LABELS
    )
    limit = GaugeMetricFamily(
        "vramtop_gpu_power_limit_watts", "GPU enforced power limit, watts.", labels=GPU_LABELS
    )
    for g in gpus:
        labels = _gpu_labels(g)
        if g.memory_used_bytes is not None:
            used.add_metric(labels, g.memory_used_bytes)
        if g.memory_total_bytes is not None:
            total.add_metric(labels, g.memory_total_bytes)
        if g.utilization_percent is not None:
            util.add_metric(labels, g.utilization_percent / 100)
        if g.temperature_c is not None:
            temp.add_metric(labels, g.temperature_c)
        if g.power_watts is not None:
            power.add_metric(labels, g.power_watts)
        if g.power_limit_watts is not None:
            limit.add_metric(labels, g.power_limit_watts)
    yield from (used, total, util, temp, power, limit)


def _model_families(frame: Frame, gpus: list[GpuReading]) -> Iterator[Metric]:
    vram = GaugeMetricFamily(
        "vramtop_model_vram_bytes",
        "VRAM held by the model's processes on one GPU, bytes.",
        labels=["model", "gpu", "gpu_uuid"],
    )
    # (model, gpu) -> bytes, or None when any of its processes' usage is unknown: a partial
    # sum would read as an exact figure.
    sums: dict[tuple[str, int], int | None] = {}
    for g in gpus:
        for p in g.processes:
            if p.model is None:
                continue
            key = (p.model, g.index)
            before = sums.get(key, 0)
            add = p.used_memory_bytes
            sums[key] = None if before is None or add is None else before + add
    uuids = {g.index: g.uuid or "" for g in gpus}
    for (model, index), total in sums.items():
        if total is not None:
            vram.add_metric([model, str(index), uuids[index]], total)
    yield vram
    count = GaugeMetricFamily(
        "vramtop_model_processes", "Processes serving the model on this host.", labels=["model"]
    )
    for m in frame.models:
        if m.processes:  # a model known only from its server's metrics has no process count
            count.add_metric([m.name], len(set(m.processes)))
    yield count


def _process_family(gpus: list[GpuReading]) -> Metric:
    family = GaugeMetricFamily(
        "vramtop_process_vram_bytes",
        "VRAM held by one process on one GPU, bytes.",
        labels=["model", "gpu_uuid", "pid", "user"],
    )
    # Summed per label set: a process on two MIG slices of one GPU is one series.
    sums: dict[tuple[str, ...], int] = {}
    for g in gpus:
        for p in g.processes:
            if p.used_memory_bytes is not None:
                key = (p.model or "", g.uuid or "", str(p.pid), p.user or "")
                sums[key] = sums.get(key, 0) + p.used_memory_bytes
    for labels, value in sums.items():
        family.add_metric(list(labels), value)
    return family
