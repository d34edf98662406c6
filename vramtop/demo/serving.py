"""The demo host's serving side: simulated inference servers on loopback ports, read by the
real scrape source, and the alerts their incidents fire.

Every few minutes something goes wrong, on a fixed timetable so a demo shows each within ten
minutes: a latency spike on the 70B model, a queue backlog on the face detector, the VRAM
squeeze on GPU 3 (see host.scenario_at) that fires VRAMExhausted, and a KV-cache squeeze on the
70B model: its KV cache fills to ~98 %, vLLM preempts requests and TTFT climbs.

The serving figures are consistent with each other: generated tokens/s = requests/s x tokens
per answer, prompt tokens/s = requests/s x tokens per prompt, and everything is a function of
the epoch, so the past (the charts' backfill, see host.DemoScrapeSource) is computed like now.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from types import MappingProxyType

from vramtop.demo.exporter import GIB, ModelLoad, SimulatedExporter
from vramtop.demo.fleet import alerts_at as fleet_alerts
from vramtop.model import AlertReading, SilenceMatcher, SilenceReading
from vramtop.records import record

# The llama.cpp server's model: its metrics carry no model label, so its scrape target is named
# for it, as a Prometheus job would be (see host.DemoScrapeSource).
LLAMACPP_MODEL = "Mistral-7B-Instruct-v0.3-Q4_K_M"


@record
class Incident:
    alert: str
    severity: str
    period: float  # seconds between starts
    offset: float  # seconds into the period when it starts
    length: float  # seconds it lasts
    pending_for: float  # the rule's ``for:``: pending this long, then firing
    labels: tuple[tuple[str, str], ...]
    summary: str

    def age(self, t: float) -> float | None:
        """Seconds since this incident started, or None when it is not happening."""
        into = (t - self.offset) % self.period
        return into if into < self.length else None


INCIDENTS = (
    Incident("SlowAPIResponse", "warning", 420, 60, 90, 20,
             (("model_name", "llama-3.1-70b"), ("instance", "demo-gpu-host:8000")),
             "p95 latency of llama-3.1-70b is above 1 s"),
    Incident("ModelQueueBacklog", "warning", 600, 200, 120, 30,
             (("model", "yolov10n"), ("instance", "demo-gpu-host:8101")),
             "Model yolov10n has more than 50 requests queued"),
    Incident("VRAMExhausted", "critical", 600, 0, 0, 30,
             (("gpu", "3"), ("instance", "demo-gpu-host:9400")),
             "VRAM on GPU 3 above 95 %"),
    Incident("KVCacheSaturated", "warning", 600, 330, 150, 30,
             (("model_name", "llama-3.1-70b"), ("instance", "demo-gpu-host:8000")),
             "KV cache of llama-3.1-70b above 95 %: requests are preempted"),
)  # fmt: skip
_SQUEEZE = INCIDENTS[2]
_KV = INCIDENTS[3]
KV_FULL = 0.98  # the 70B model's KV cache at the squeeze's height


def kv_squeeze(t: float) -> float:
    """0..1: how far the 70B model's KV-cache squeeze has gone: it builds over 30 s, holds
    for 90 s and eases off over 30 s. The alert's 150 s include its build-up."""
    age = _KV.age(t)
    if age is None:
        return 0.0
    return min(1.0, age / 30.0, (_KV.length - age) / 30.0)


def squeeze(t: float) -> float:
    """0..1: how far GPU 3's VRAM squeeze has gone: every 10 minutes it builds for about half
    a minute, holds near full for about a minute and a half, then eases off."""
    return min(1.0, max(0.0, (math.sin(t * 2 * math.pi / 600.0) - 0.7) / 0.2))


def _squeeze_age(t: float) -> float | None:
    if squeeze(t) < 0.9:
        return None
    start = t
    while squeeze(start - 1) >= 0.9 and t - start < 120:
        start -= 1
    return t - start


def _vllm(t: float, wave: float) -> list[ModelLoad]:
    slow = 3.0 if INCIDENTS[0].age(t) is not None else 1.0
    kv = kv_squeeze(t)
    usual = 0.55 + 0.05 * math.sin(t / 45.0)  # the 70B model's KV cache, no squeeze
    full = kv > 0.8  # preemptions start when the cache has no room left
    rps = 6.0 * wave
    return [ModelLoad("llama-3.1-70b", rps, 0.6 * slow, 1.4 * slow, 2.2 * slow, 0.002,
                      (2 if slow == 1 else 35) + int(40 * kv), running=24,
                      ttft_p95=0.35 * slow + 2.3 * kv, itl_p95=0.045 + 0.03 * kv,
                      queue_time_p95=0.05 * slow + 1.5 * kv,
                      kv_cache_usage=round(usual + (KV_FULL - usual) * kv, 4),
                      preemptions_per_second=4.0 * kv if full else 0.0,
                      prompt_tokens_per_second=rps * 1100, prefix_cache_hit_ratio=0.62,
                      generation_tokens_per_second=rps * 140)]  # fmt: skip


def _sglang(t: float, wave: float) -> list[ModelLoad]:
    rps = 18.0 * wave
    return [ModelLoad("Qwen/Qwen2.5-7B-Instruct", rps, 0.25, 0.7, 1.1, 0.0005, 1,
                      running=12, tp_size=1, ttft_p95=0.12, itl_p95=0.012, queue_time_p95=0.02,
                      kv_cache_usage=round(0.41 + 0.06 * math.sin(t / 60.0), 4),
                      prompt_tokens_per_second=rps * 600, prefix_cache_hit_ratio=0.48,
                      generation_tokens_per_second=rps * 180)]  # fmt: skip


def _llamacpp(t: float, wave: float) -> list[ModelLoad]:
    rps = 1.5 * wave
    return [ModelLoad(LLAMACPP_MODEL, rps, 2.5, 5.5, 8.0, 0.0, 0, running=2,
                      kv_cache_usage=round(0.23 + 0.04 * math.sin(t / 25.0), 4),
                      prompt_tokens_per_second=rps * 400,
                      generation_tokens_per_second=rps * 60)]  # fmt: skip


def _facesocial(t: float, wave: float) -> list[ModelLoad]:
    backlog = INCIDENTS[1].age(t)
    queue = int(20 + 70 * math.sin(math.pi * backlog / INCIDENTS[1].length)) if backlog else 3
    return [
        ModelLoad("yolov10n", 40.0 * wave, 0.018, 0.045, 0.08, 0.0002, queue,
                  vram_bytes=int(1.2 * GIB)),
        ModelLoad("adaface_ir101", 25.0 * wave, 0.03, 0.07, 0.12, 0.0004, 2,
                  vram_bytes=int(2.1 * GIB)),
    ]  # fmt: skip


def _triton(t: float, wave: float) -> list[ModelLoad]:
    return [ModelLoad("bge-large-en-v1.5", 120.0 * wave, 0.006, 0.015, 0.03, 0.0, 1)]


SERVERS: dict[str, Callable[[float, float], list[ModelLoad]]] = {
    "vllm": _vllm,
    "sglang": _sglang,
    "llamacpp": _llamacpp,
    "facesocial": _facesocial,
    "triton": _triton,
}


def loads(t: float) -> dict[str, list[ModelLoad]]:
    """What each simulated server is doing at epoch ``t``."""
    wave = 1 + 0.15 * math.sin(t / 30.0)
    return {family: server(t, wave) for family, server in SERVERS.items()}


def family_loads(family: str, t: float) -> list[ModelLoad]:
    """One server's part of loads(t), without computing the others'."""
    return SERVERS[family](t, 1 + 0.15 * math.sin(t / 30.0))


class DemoServing:
    """Starts the simulated servers on first use and moves their load with the clock."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._exporters: dict[str, SimulatedExporter] = {}

    def urls(self) -> list[str]:
        with self._lock:
            if not self._exporters:
                for profile, models in loads(self._clock()).items():
                    exporter = SimulatedExporter(
                        profile, models, host="demo-gpu-host", triton_summaries=True
                    )
                    exporter.start()
                    self._exporters[profile] = exporter
            return [e.url for e in self._exporters.values()]

    def now(self) -> float:
        return self._clock()

    def job(self, url: str) -> str | None:
        """The scrape job naming the server at ``url``: the llama.cpp server's model (its
        metrics carry no model label); None for the others and for URLs not the demo's."""
        with self._lock:
            llama = self._exporters.get("llamacpp")
            return LLAMACPP_MODEL if llama is not None and llama.url == url else None

    def advance(self) -> None:
        with self._lock:
            for profile, models in loads(self._clock()).items():
                exporter = self._exporters.get(profile)
                if exporter is not None and exporter.models != tuple(models):
                    exporter.set_models(models)

    def stop(self) -> None:
        with self._lock:
            for exporter in self._exporters.values():
                exporter.stop()
            self._exporters.clear()


BACKLOG = INCIDENTS[1]
SILENCED_AFTER = 75.0  # seconds into the backlog when on-call silences it for an hour


@record
class DemoAlerts:
    """The alerts, and the silences a demo Alertmanager would hold."""

    alerts: tuple[AlertReading, ...]
    silences: tuple[SilenceReading, ...] = ()
    note: str = ""


def demo_silence(t: float) -> SilenceReading | None:
    """On-call silences the backlog 75 s in, as the demo's Alertmanager would show it."""
    age = BACKLOG.age(t)
    if age is None or age < SILENCED_AFTER:
        return None
    start = t - age + SILENCED_AFTER
    return SilenceReading(
        id=f"demo-{int(start)}",
        matchers=(
            SilenceMatcher("alertname", BACKLOG.alert),
            SilenceMatcher("model", dict(BACKLOG.labels)["model"]),
        ),
        created_by="oncall",
        comment="scaling out yolov10n (demo)",
        starts_at=start,
        ends_at=start + 3600.0,
    )


class DemoAlertSource:
    """The alerts the demo's incidents would fire under the shipped rules (no Prometheus)."""

    name = "alerts"

    def __init__(self, clock: Callable[[], float], fleet: bool = False) -> None:
        self._clock = clock
        self._fleet = fleet  # also the demo fleet's alerts

    def poll(self) -> DemoAlerts:
        t = self._clock()
        silence = demo_silence(t)
        alerts = []
        for incident in INCIDENTS:
            age = _squeeze_age(t) if incident is _SQUEEZE else incident.age(t)
            if age is None:
                continue
            labels = {"alertname": incident.alert, "severity": incident.severity,
                      **dict(incident.labels)}  # fmt: skip
            alerts.append(
                AlertReading(
                    name=incident.alert,
                    severity=incident.severity,
                    state="firing" if age >= incident.pending_for else "pending",
                    summary=incident.summary + " (demo)",
                    labels=MappingProxyType(labels),
                    active_since=t - age,
                    silenced=silence is not None and incident is BACKLOG,
                    source="demo",
                )
            )
        if self._fleet:
            alerts.extend(fleet_alerts(t))
        return DemoAlerts(tuple(alerts), (silence,) if silence else ())
