"""A simulated inference-server / GPU exporter speaking the real servers' metric names.

One :class:`SimulatedExporter` stands for one server family (``profile``) and serves
``/metrics`` in the Prometheus text format 0.0.4. It is written without prometheus_client
because real servers break that library's conventions (Triton's and TGI's counters have no
``_total`` suffix) and the simulation must emit exactly the real names.

Values are chosen so that a test knows what PromQL will return:

- counters grow linearly with wall time at the configured rate, so ``rate(x[w])`` is that rate
  once Prometheus holds samples for the whole window ``w``;
- every latency histogram has bucket boundaries at its p50/p95/p99 with cumulative fractions
  0.50/0.95/0.99 (next to the server's usual buckets and ``+Inf``), so
  ``histogram_quantile(q, sum by (le, <model label>) (rate(<h>_bucket[w])))`` returns the
  configured quantile for q = 0.5/0.95/0.99 (to a few ulps: Prometheus computes it as
  ``start + (end - start) * 1.0``), and ``_sum / _count`` is :attr:`Latency.mean`;
- failures / requests = ``error_ratio``.

Secondary distributions (TTFT, inter-token latency, queue time) are set by their p95 alone:
p50 = p95 / 2 and p99 = p95 * 1.25.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise

MIB = 2**20
GIB = 2**30
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# The servers' own default buckets, next to which the simulated quantile boundaries are placed.
_PY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
_VLLM_LATENCY = (0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960)
_VLLM_TTFT = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10)
_VLLM_ITL = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
_SGLANG_LATENCY = (0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400)
_SGLANG_ITL = (0.002, 0.004, 0.006, 0.008, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.06, 0.1, 0.2)
_SGLANG_QUEUE = (0.0, 0.1, 0.2, 0.5, 1, 2, 3, 4, 5, 10, 15, 20, 30, 40, 50, 60, 100, 200, 300)
_TGI_BUCKETS = tuple(0.0001 * 1.5**k for k in range(1, 36))  # TGI router: 35 x1.5 from 0.00015
_TRITON_SUMMARY_QUANTILES = (0.5, 0.9, 0.95, 0.99)


@dataclass(frozen=True, slots=True)
class Latency:
    """A latency distribution (seconds) with a piecewise-linear CDF through
    (0, 0), (p50, .5), (p95, .95), (p99, .99) and (2 * p99, 1)."""

    p50: float
    p95: float
    p99: float

    def __post_init__(self) -> None:
        if not 0 < self.p50 < self.p95 < self.p99:
            raise ValueError(f"need 0 < p50 < p95 < p99, got {self.p50}, {self.p95}, {self.p99}")

    @classmethod
    def from_p95(cls, p95: float) -> Latency:
        return cls(p95 / 2, p95, p95 * 1.25)

    def _points(self) -> tuple[tuple[float, float], ...]:
        return (
            (0.0, 0.0),
            (self.p50, 0.5),
            (self.p95, 0.95),
            (self.p99, 0.99),
            (2 * self.p99, 1.0),
        )

    def cdf(self, x: float) -> float:
        points = self._points()
        for (x0, f0), (x1, f1) in pairwise(points):
            if x == x1:
                return f1  # anchors exactly, never an interpolated 0.9499999
            if x < x1:
                return f0 + (f1 - f0) * (x - x0) / (x1 - x0) if x > x0 else f0
        return 1.0

    def quantile(self, q: float) -> float:
        points = self._points()
        for (x0, f0), (x1, f1) in pairwise(points):
            if q <= f1:
                return x0 + (x1 - x0) * (q - f0) / (f1 - f0)
        return points[-1][0]

    @property
    def mean(self) -> float:
        points = self._points()
        return sum((f1 - f0) * (x0 + x1) / 2 for (x0, f0), (x1, f1) in pairwise(points))

    def bounds(self, usual: Iterable[float]) -> list[float]:
        return sorted({float(b) for b in usual} | {self.p50, self.p95, self.p99})


@dataclass(frozen=True, slots=True)
class ModelLoad:
    """What one served model is doing. Latencies in seconds, ratios in 0..1.

    ``instance`` labels every series of the model explicitly, so that one exporter scraped with
    ``honor_labels: true`` stands for a fleet of hosts. ``running``: requests in execution (vLLM,
    SGLang) or the batch size (TGI); ``itl_p95``: inter-token latency; ``timeout_ratio`` and
    ``fallback_ratio``: facesocial only; ``tp_size``: SGLang's tensor-parallel ranks;
    ``version``: Triton's model version. An unset optional histogram is not emitted; an unset
    gauge or counter reads 0.
    """

    name: str
    requests_per_second: float
    latency_p50: float
    latency_p95: float
    latency_p99: float
    error_ratio: float = 0.0
    queue_length: int = 0
    vram_bytes: int | None = None
    ttft_p95: float | None = None
    kv_cache_usage: float | None = None
    preemptions_per_second: float | None = None
    instance: str | None = None
    running: int = 0
    itl_p95: float | None = None
    queue_time_p95: float | None = None
    generation_tokens_per_second: float = 0.0
    timeout_ratio: float = 0.0
    fallback_ratio: float = 0.0
    tp_size: int = 1
    version: str = "1"

    def __post_init__(self) -> None:
        _ = self.latency  # validates the quantiles
        if not 0 <= self.error_ratio <= 1:
            raise ValueError(f"error_ratio must be within 0..1, got {self.error_ratio}")
        if self.requests_per_second < 0:
            raise ValueError("requests_per_second must not be negative")

    @property
    def latency(self) -> Latency:
        return Latency(self.latency_p50, self.latency_p95, self.latency_p99)


@dataclass(frozen=True, slots=True)
class GpuProcess:
    pid: int
    name: str
    used_bytes: int


@dataclass(frozen=True, slots=True)
class GpuLoad:
    index: int = 0
    uuid: str | None = None  # default: a stable fake "GPU-..." derived from the index
    name: str = "NVIDIA H100 80GB HBM3"
    memory_total_bytes: int = 80 * GIB
    memory_used_bytes: int = 0
    memory_reserved_bytes: int = 0
    utilization: float = 0.0  # 0..1
    temperature_c: float = 45.0
    power_watts: float = 120.0
    power_limit_watts: float = 700.0
    processes: tuple[GpuProcess, ...] = ()
    instance: str | None = None

    @property
    def memory_free_bytes(self) -> int:
        return self.memory_total_bytes - self.memory_used_bytes - self.memory_reserved_bytes

    @property
    def gpu_uuid(self) -> str:
        return self.uuid or f"GPU-5a3f1c2e-8b7d-4e6f-9a1b-{self.index:012x}"


# -- exposition ----------------------------------------------------------------------------

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
class _Family:
    name: str
    kind: str
    # (sample name, labels, value, grows): the value of a growing sample is a per-second slope.
    samples: list[tuple[str, Labels, float, bool]] = field(default_factory=list)


class _Out:
    """Collects metric families in order of first appearance."""

    def __init__(self) -> None:
        self.families: dict[str, _Family] = {}

    def _add(self, family: str, kind: str, sample: str, labels: dict, value: float, grows: bool):
        fam = self.families.setdefault(family, _Family(family, kind))
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
        for q in _TRITON_SUMMARY_QUANTILES:
            ql = {**labels, "quantile": format_value(q)}
            self._add(name, "summary", name, ql, dist.quantile(q) * 1e6, False)
        self._add(name, "summary", f"{name}_sum", labels, per_second * dist.mean * 1e6, True)
        self._add(name, "summary", f"{name}_count", labels, per_second, True)


def _at(labels: dict[str, str], instance: str | None) -> dict[str, str]:
    return labels if instance is None else {**labels, "instance": instance}


# -- profiles ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Options:
    host: str
    legacy: bool
    counter_suffix: str
    hostname_label: str
    triton_summaries: bool


Models = Sequence[ModelLoad]
Gpus = Sequence[GpuLoad]


def _facesocial(out: _Out, models: Models, gpus: Gpus, o: _Options) -> None:
    for m in models:
        lab, rps = _at({"model": m.name}, m.instance), m.requests_per_second
        out.histogram("model_inference_duration_seconds", lab, m.latency, rps, _PY_BUCKETS)
        out.gauge("model_queue_length", lab, m.queue_length)
        if m.vram_bytes is not None:
            out.gauge("model_memory_usage_bytes", lab, m.vram_bytes)
        out.counter("model_errors_total", lab, rps * m.error_ratio)
        out.counter("model_timeout_total", lab, rps * m.timeout_ratio)
        out.counter("model_fallback_total", lab, rps * m.fallback_ratio)
    for m in models:
        http, rps = (
            _at({"method": "POST", "handler": f"/api/v1/{m.name}"}, m.instance),
            m.requests_per_second,
        )
        out.histogram("http_request_duration_seconds", http, m.latency, rps, _PY_BUCKETS)
        for status, share in (("200", 1 - m.error_ratio), ("500", m.error_ratio)):
            out.counter("http_requests_total", {**http, "status": status}, rps * share)
    for g in gpus:
        lab = _at({"gpu": str(g.index)}, g.instance)
        out.gauge("vram_allocated_bytes", lab, g.memory_used_bytes)
        out.gauge("vram_available_bytes", lab, g.memory_total_bytes - g.memory_used_bytes)


def _vllm(out: _Out, models: Models, gpus: Gpus, o: _Options) -> None:
    kv = "vllm:gpu_cache_usage_perc" if o.legacy else "vllm:kv_cache_usage_perc"
    itl_name = "time_per_output_token_seconds" if o.legacy else "inter_token_latency_seconds"
    for m in models:
        lab = _at({"model_name": m.name, "engine": "0"}, m.instance)
        rps, err = m.requests_per_second, m.error_ratio
        out.gauge("vllm:num_requests_running", lab, m.running)
        out.gauge("vllm:num_requests_waiting", lab, m.queue_length)
        out.gauge(kv, lab, m.kv_cache_usage or 0.0)
        finished = {"stop": 0.9 * (1 - err), "length": 0.1 * (1 - err), "abort": 0, "error": err}
        for reason, share in finished.items():
            out.counter(
                "vllm:request_success_total", {**lab, "finished_reason": reason}, rps * share
            )
        out.counter("vllm:num_preemptions_total", lab, m.preemptions_per_second or 0.0)
        out.counter("vllm:generation_tokens_total", lab, m.generation_tokens_per_second)
        out.histogram("vllm:e2e_request_latency_seconds", lab, m.latency, rps, _VLLM_LATENCY)
        if ttft := _by_p95(m.ttft_p95):
            out.histogram("vllm:time_to_first_token_seconds", lab, ttft, rps, _VLLM_TTFT)
        if itl := _by_p95(m.itl_p95):
            tokens = m.generation_tokens_per_second or rps
            out.histogram(f"vllm:{itl_name}", lab, itl, tokens, _VLLM_ITL)
        if queue := _by_p95(m.queue_time_p95):
            out.histogram("vllm:request_queue_time_seconds", lab, queue, rps, _VLLM_LATENCY)


def _triton(out: _Out, models: Models, gpus: Gpus, o: _Options) -> None:
    for m in models:
        lab = _at({"model": m.name, "version": m.version}, m.instance)
        ok = m.requests_per_second * (1 - m.error_ratio)
        queue = _by_p95(m.queue_time_p95)
        queue_us = queue.mean * 1e6 if queue else 0.0
        compute_us = max(m.latency.mean * 1e6 - queue_us, 0.0)
        # Triton's counters carry no _total suffix; durations are cumulative microseconds of
        # successful requests.
        for name, per_request in (
            ("nv_inference_request_success", 1),
            ("nv_inference_count", 1),
            ("nv_inference_exec_count", 1),
            ("nv_inference_request_duration_us", m.latency.mean * 1e6),
            ("nv_inference_queue_duration_us", queue_us),
            ("nv_inference_compute_input_duration_us", compute_us * 0.05),
            ("nv_inference_compute_infer_duration_us", compute_us * 0.9),
            ("nv_inference_compute_output_duration_us", compute_us * 0.05),
        ):
            out.counter(name, lab, ok * per_request)
        for reason in ("REJECTED", "CANCELED", "BACKEND", "OTHER"):
            failed = m.requests_per_second * m.error_ratio if reason == "BACKEND" else 0.0
            out.counter("nv_inference_request_failure", {**lab, "reason": reason}, failed)
        out.gauge("nv_inference_pending_request_count", lab, m.queue_length)
        if o.triton_summaries:
            out.summary_us("nv_inference_request_summary_us", lab, m.latency, ok)
            if queue:
                out.summary_us("nv_inference_queue_summary_us", lab, queue, ok)
    for g in gpus:
        lab = _at({"gpu_uuid": g.gpu_uuid}, g.instance)
        out.gauge("nv_gpu_utilization", lab, g.utilization)
        out.gauge("nv_gpu_memory_total_bytes", lab, g.memory_total_bytes)
        out.gauge("nv_gpu_memory_used_bytes", lab, g.memory_used_bytes)
        out.gauge("nv_gpu_power_usage", lab, g.power_watts)


def _tgi(out: _Out, models: Models, gpus: Gpus, o: _Options) -> None:
    instances = [m.instance for m in models]
    if len(models) > 1 and (None in instances or len(set(instances)) != len(instances)):
        raise ValueError("TGI has no model label: several models need distinct instances")
    sfx = o.counter_suffix
    for m in models:
        lab, rps, err = _at({}, m.instance), m.requests_per_second, m.error_ratio
        out.counter(f"tgi_request_count{sfx}", lab, rps)
        out.counter(f"tgi_request_success{sfx}", lab, rps * (1 - err))
        out.counter(f"tgi_request_failure{sfx}", {**lab, "err": "generation"}, rps * err)
        out.gauge("tgi_queue_size", lab, m.queue_length)
        out.gauge("tgi_batch_current_size", lab, m.running)
        out.histogram("tgi_request_duration", lab, m.latency, rps, _TGI_BUCKETS)
        if queue := _by_p95(m.queue_time_p95):
            out.histogram("tgi_request_queue_duration", lab, queue, rps, _TGI_BUCKETS)
        if itl := _by_p95(m.itl_p95):
            name = "tgi_request_mean_time_per_token_duration"
            out.histogram(name, lab, itl, rps, _TGI_BUCKETS)


def _sglang(out: _Out, models: Models, gpus: Gpus, o: _Options) -> None:
    for m in models:
        lab, rps = _at({"model_name": m.name}, m.instance), m.requests_per_second
        queue = _by_p95(m.queue_time_p95)
        for rank in range(m.tp_size):
            # Scheduler metrics: one series per TP rank, each rank seeing every request.
            sched = {**lab, "engine_type": "unified", "tp_rank": str(rank), "pp_rank": "0"}
            out.gauge("sglang:num_running_reqs", sched, m.running)
            out.gauge("sglang:num_queue_reqs", sched, m.queue_length)
            out.gauge("sglang:token_usage", sched, m.kv_cache_usage or 0.0)
            out.gauge("sglang:gen_throughput", sched, m.generation_tokens_per_second)
            if queue:
                out.histogram("sglang:queue_time_seconds", sched, queue, rps, _SGLANG_QUEUE)
        out.counter("sglang:num_requests_total", lab, rps)
        out.counter("sglang:num_aborted_requests_total", lab, rps * m.error_ratio)
        out.counter("sglang:generation_tokens_total", lab, m.generation_tokens_per_second)
        out.histogram("sglang:e2e_request_latency_seconds", lab, m.latency, rps, _SGLANG_LATENCY)
        if ttft := _by_p95(m.ttft_p95):
            out.histogram("sglang:time_to_first_token_seconds", lab, ttft, rps, _SGLANG_LATENCY)
        if itl := _by_p95(m.itl_p95):
            tokens = m.generation_tokens_per_second or rps
            out.histogram("sglang:inter_token_latency_seconds", lab, itl, tokens, _SGLANG_ITL)


def _dcgm(out: _Out, models: Models, gpus: Gpus, o: _Options) -> None:
    for g in gpus:
        lab = _at(
            {
                "gpu": str(g.index),
                "UUID": g.gpu_uuid,
                "pci_bus_id": f"00000000:{0x18 + g.index:02X}:00.0",
                "device": f"nvidia{g.index}",
                "modelName": g.name,
                o.hostname_label: o.host,
            },
            g.instance,
        )
        # DCGM reports framebuffer sizes in whole MiB and utilisation in whole percent.
        out.gauge("DCGM_FI_DEV_FB_USED", lab, g.memory_used_bytes // MIB)
        out.gauge("DCGM_FI_DEV_FB_FREE", lab, g.memory_free_bytes // MIB)
        out.gauge("DCGM_FI_DEV_FB_RESERVED", lab, g.memory_reserved_bytes // MIB)
        out.gauge("DCGM_FI_DEV_GPU_UTIL", lab, round(g.utilization * 100))
        out.gauge("DCGM_FI_DEV_GPU_TEMP", lab, g.temperature_c)
        out.gauge("DCGM_FI_DEV_POWER_USAGE", lab, g.power_watts)


def _nvidia_smi(out: _Out, models: Models, gpus: Gpus, o: _Options) -> None:
    for g in gpus:
        # nvidia_gpu_exporter labels every series with the uuid lowercased, "gpu-" stripped,
        # and converts nvidia-smi's whole MiB to bytes.
        uuid = g.gpu_uuid.lower().removeprefix("gpu-")
        lab = _at({"uuid": uuid}, g.instance)
        info = {"uuid": uuid, "name": g.name, "driver_model_current": "N/A"}
        info |= {"driver_model_pending": "N/A", "vbios_version": "96.00.74.00.01"}
        out.gauge(
            "nvidia_smi_gpu_info", _at({**info, "driver_version": "550.54.15"}, g.instance), 1
        )
        out.gauge("nvidia_smi_memory_total_bytes", lab, _whole_mib(g.memory_total_bytes))
        out.gauge("nvidia_smi_memory_used_bytes", lab, _whole_mib(g.memory_used_bytes))
        out.gauge("nvidia_smi_memory_free_bytes", lab, _whole_mib(g.memory_free_bytes))
        out.gauge("nvidia_smi_utilization_gpu_ratio", lab, round(g.utilization * 100) / 100)
        out.gauge("nvidia_smi_temperature_gpu", lab, g.temperature_c)
        out.gauge("nvidia_smi_power_draw_watts", lab, g.power_watts)
        out.gauge("nvidia_smi_enforced_power_limit_watts", lab, g.power_limit_watts)
        out.gauge("nvidia_smi_index", lab, g.index)
        for p in g.processes:
            app = _at({"uuid": uuid, "pid": str(p.pid), "process_name": p.name}, g.instance)
            out.gauge("nvidia_smi_compute_app_used_memory_bytes", app, _whole_mib(p.used_bytes))


def _by_p95(p95: float | None) -> Latency | None:
    return None if p95 is None else Latency.from_p95(p95)


def _whole_mib(n: int) -> int:
    return n // MIB * MIB


_BUILDERS: dict[str, Callable[[_Out, Models, Gpus, _Options], None]] = {
    "facesocial": _facesocial,
    "vllm": _vllm,
    "triton": _triton,
    "tgi": _tgi,
    "sglang": _sglang,
    "dcgm": _dcgm,
    "nvidia_gpu_exporter": _nvidia_smi,
}
PROFILES = tuple(_BUILDERS)


# -- the exporter --------------------------------------------------------------------------


class SimulatedExporter:
    """Serves one profile's metrics for the given models and GPUs; safe to mutate while served.

    ``gpus=None`` means one default GPU whose used memory is the models' ``vram_bytes``.
    ``legacy`` (vllm) emits the old names ``vllm:gpu_cache_usage_perc`` and
    ``vllm:time_per_output_token_seconds``; ``counter_suffix`` (tgi) is appended to TGI's
    counter names ("" as TGI emits them, or "_total"); ``hostname_label`` (dcgm) is "Hostname"
    or, as newer dcgm-exporter releases name it, "hostname"; ``triton_summaries`` adds Triton's
    opt-in ``*_summary_us`` summaries.
    """

    def __init__(
        self,
        profile: str,
        models: Sequence[ModelLoad] = (),
        gpus: Sequence[GpuLoad] | None = None,
        host: str = "sim-gpu-host",
        *,
        legacy: bool = False,
        counter_suffix: str = "",
        hostname_label: str = "Hostname",
        triton_summaries: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if profile not in _BUILDERS:
            raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        self.profile = profile
        self._options = _Options(host, legacy, counter_suffix, hostname_label, triton_summaries)
        self._clock = clock
        self._lock = threading.RLock()
        self._models = tuple(models)
        self._gpus = None if gpus is None else tuple(gpus)
        self._build()  # fail now, not on the first scrape
        self.started_at = clock()
        self._since = self.started_at
        self._bases: dict[Key, float] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def models(self) -> tuple[ModelLoad, ...]:
        return self._models

    def _effective_gpus(self) -> tuple[GpuLoad, ...]:
        if self._gpus is not None:
            return self._gpus
        used = sum(m.vram_bytes or 0 for m in self._models)
        return (GpuLoad(memory_used_bytes=used),)

    def _build(self) -> dict[str, _Family]:
        out = _Out()
        _BUILDERS[self.profile](out, self._models, self._effective_gpus(), self._options)
        return out.families

    # -- runtime changes: counters keep their value and continue at the new rate --

    def set_models(self, models: Sequence[ModelLoad]) -> None:
        self._change(models=tuple(models))

    def update_model(self, name: str, **changes: object) -> None:
        """Replaces fields of one model: ``update_model("m", queue_length=80)``."""
        with self._lock:
            if name not in {m.name for m in self._models}:
                raise KeyError(name)
            models = [
                dataclasses.replace(m, **changes) if m.name == name else m for m in self._models
            ]
            self.set_models(models)

    def set_gpus(self, gpus: Sequence[GpuLoad] | None) -> None:
        self._change(gpus=None if gpus is None else tuple(gpus))

    def _change(self, **config: tuple | None) -> None:
        with self._lock:
            now = self._clock()
            values = {(s, labels): v for s, labels, v in self._evaluate(self._build(), now)}
            previous = self._models, self._gpus
            self._models = config.get("models", self._models)
            self._gpus = config.get("gpus", self._gpus)
            try:
                families = self._build()
            except Exception:
                self._models, self._gpus = previous
                raise
            self._bases = _carry_over(values, families)
            self._since = now

    # -- exposition --

    def _evaluate(self, families: dict[str, _Family], now: float):
        dt = max(now - self._since, 0.0)
        for fam in families.values():
            for sample, labels, value, grows in fam.samples:
                if grows:
                    value = self._bases.get((sample, labels), 0.0) + value * dt
                yield sample, labels, value

    def render(self, now: float | None = None) -> str:
        with self._lock:
            now = self._clock() if now is None else now
            families = self._build()
            lines: list[str] = []
            for fam in families.values():
                lines.append(f"# HELP {fam.name} {fam.name} (simulated by vramtop)")
                lines.append(f"# TYPE {fam.name} {fam.kind}")
                for sample, labels, value in self._evaluate({fam.name: fam}, now):
                    lines.append(f"{sample}{_format_labels(labels)} {format_value(value)}")
        return "\n".join(lines) + "\n"

    # -- HTTP --

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serves ``/metrics`` from a daemon thread; returns the metrics URL."""
        if self._server is not None:
            raise RuntimeError("exporter already started")
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self.send_error(404)
                    return
                body = exporter.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", CONTENT_TYPE)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits for one poll
            name=f"sim-exporter-{self.profile}",
            daemon=True,
        )
        self._thread.start()
        return self.url

    @property
    def address(self) -> str:
        if self._server is None:
            raise RuntimeError("exporter not started")
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> SimulatedExporter:
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _format_labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels) + "}"


def _carry_over(values: dict[Key, float], families: dict[str, _Family]) -> dict[Key, float]:
    """Counter values at the moment of a change become the new bases. A histogram bucket that
    did not exist before starts from the nearest lower bucket's count, which keeps the
    cumulative buckets monotonic."""
    bases: dict[Key, float] = {}
    for fam in families.values():
        for sample, labels, _, grows in fam.samples:
            if not grows:
                continue
            key = (sample, labels)
            if key in values:
                bases[key] = values[key]
            elif sample.endswith("_bucket"):
                bases[key] = _lower_bucket(values, sample, labels)
    return bases


def _lower_bucket(values: dict[Key, float], sample: str, labels: Labels) -> float:
    le = float(dict(labels)["le"])
    rest = [kv for kv in labels if kv[0] != "le"]
    below = [
        (float(dict(other)["le"]), value)
        for (name, other), value in values.items()
        if name == sample
        and [kv for kv in other if kv[0] != "le"] == rest
        and float(dict(other)["le"]) < le
    ]
    return max(below)[1] if below else 0.0
