"""A simulated inference-server / GPU exporter speaking the real servers' metric names.

One :class:`SimulatedExporter` stands for one server family (``profile``) and serves
``/metrics`` in the Prometheus text format 0.0.4. It is written without prometheus_client
because real servers break that library's conventions (Triton's and TGI's counters have no
``_total`` suffix) and the simulation must emit exactly the real names.

The families' metrics are written in :mod:`vramtop.demo.families`; the loads they are computed
from in :mod:`vramtop.demo.loads`.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from vramtop.demo.families import BUILDERS, PROFILES
from vramtop.demo.families.out import (
    Family,
    Key,
    Labels,
    Options,
    Out,
    escape_label_value,
    format_value,
)
from vramtop.demo.loads import GIB, MIB, GpuLoad, GpuProcess, Latency, ModelLoad

__all__ = [
    "GIB",
    "MIB",
    "PROFILES",
    "GpuLoad",
    "GpuProcess",
    "Latency",
    "ModelLoad",
    "SimulatedExporter",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


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
        if profile not in BUILDERS:
            raise ValueError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
        self.profile = profile
        self._options = Options(host, legacy, counter_suffix, hostname_label, triton_summaries)
        self._clock = clock
        self._lock = threading.RLock()
        self._models = tuple(models)
        self._gpus = None if gpus is None else tuple(gpus)
        self.started_at = clock()
        self._since = self.started_at
        self._bases: dict[Key, float] = {}
        self._lines = _compile(self._build(), self._bases)  # fails now, not on the first scrape
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

    def _build(self) -> dict[str, Family]:
        out = Out()
        BUILDERS[self.profile](out, self._models, self._effective_gpus(), self._options)
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
            self._lines = _compile(families, self._bases)
            self._since = now

    # -- exposition --

    def _evaluate(self, families: dict[str, Family], now: float):
        dt = max(now - self._since, 0.0)
        for fam in families.values():
            for sample, labels, value, grows in fam.samples:
                if grows:
                    value = self._bases.get((sample, labels), 0.0) + value * dt
                yield sample, labels, value

    def render(self, now: float | None = None) -> str:
        with self._lock:
            now = self._clock() if now is None else now
            dt = max(now - self._since, 0.0)
            lines = [
                head
                if value is None
                else head + format_value(base + value * dt if grows else value)
                for head, value, base, grows in self._lines
            ]
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


# A line's text up to its value, then (value or per-second slope, base, grows); no value: a
# comment line.
_Line = tuple[str, float | None, float, bool]


def _compile(families: dict[str, Family], bases: dict[Key, float]) -> list[_Line]:
    """The exposition's lines with everything but the values written out: families change only
    with the models and GPUs, while a fleet's exporter is scraped every few seconds (formatting
    8,000 GPUs' labels at each scrape cost a second of CPU)."""
    out: list[_Line] = []
    for fam in families.values():
        out.append((f"# HELP {fam.name} {fam.name} (simulated by vramtop)", None, 0.0, False))
        out.append((f"# TYPE {fam.name} {fam.kind}", None, 0.0, False))
        for sample, labels, value, grows in fam.samples:
            base = bases.get((sample, labels), 0.0) if grows else 0.0
            out.append((f"{sample}{_format_labels(labels)} ", value, base, grows))
    return out


def _carry_over(values: dict[Key, float], families: dict[str, Family]) -> dict[Key, float]:
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
