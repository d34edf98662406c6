"""What a simulated server is doing: its models' load and its GPUs, the input of every family's
metrics. Latency distributions are chosen so that a test knows what PromQL will return:


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

from collections.abc import Iterable
from itertools import pairwise

from vramtop.records import record

MIB = 2**20
GIB = 2**30


@record
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


@record
class ModelLoad:
    """What one served model is doing. Latencies in seconds, ratios in 0..1.

    ``instance`` labels every series of the model explicitly, so that one exporter scraped with
    ``honor_labels: true`` stands for a fleet of hosts. ``running``: requests in execution (vLLM,
    SGLang) or the batch size (TGI); ``itl_p95``: inter-token latency; ``timeout_ratio`` and
    ``fallback_ratio``: facesocial only; ``tp_size``: SGLang's tensor-parallel ranks;
    ``version``: Triton's model version; ``prefix_cache_hit_ratio``: the share of prompt tokens
    found in the prefix cache (vLLM, SGLang). An unset optional histogram is not emitted; an
    unset gauge or counter reads 0.
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
    prompt_tokens_per_second: float = 0.0
    prefix_cache_hit_ratio: float | None = None

    def __post_init__(self) -> None:
        _ = self.latency  # validates the quantiles
        if not 0 <= self.error_ratio <= 1:
            raise ValueError(f"error_ratio must be within 0..1, got {self.error_ratio}")
        if self.requests_per_second < 0:
            raise ValueError("requests_per_second must not be negative")

    @property
    def latency(self) -> Latency:
        return Latency(self.latency_p50, self.latency_p95, self.latency_p99)


@record
class GpuProcess:
    pid: int
    name: str
    used_bytes: int


@record
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
