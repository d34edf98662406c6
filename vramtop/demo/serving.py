"""The demo host's serving side: simulated inference servers on loopback ports, read by the
real scrape source, and the alerts their incidents fire.

Every few minutes something goes wrong, on a fixed timetable so a demo shows each within ten
minutes: a latency spike on the 70B model, a queue backlog on the face detector, and the VRAM
squeeze on GPU 3 (see host.scenario_at) that fires VRAMExhausted.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

from vramtop.demo.exporter import GIB, ModelLoad, SimulatedExporter
from vramtop.demo.fleet import alerts_at as fleet_alerts
from vramtop.model import AlertReading, SilenceMatcher, SilenceReading

LLM = {"ttft_p95": 0.35, "kv_cache_usage": 0.5, "preemptions_per_second": 0.0}


@dataclass(frozen=True, slots=True)
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
)  # fmt: skip
_SQUEEZE = INCIDENTS[2]


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


def loads(t: float) -> dict[str, list[ModelLoad]]:
    """What each simulated server is doing at epoch ``t``."""
    wave = 1 + 0.15 * math.sin(t / 30.0)
    slow = 3.0 if INCIDENTS[0].age(t) is not None else 1.0
    backlog = INCIDENTS[1].age(t)
    queue = int(20 + 70 * math.sin(math.pi * backlog / INCIDENTS[1].length)) if backlog else 3
    return {
        "vllm": [ModelLoad("llama-3.1-70b", 6.0 * wave, 0.6 * slow, 1.4 * slow, 2.2 * slow,
                           0.002, 2 if slow == 1 else 35, running=24, **LLM)],
        "sglang": [ModelLoad("Qwen/Qwen2.5-7B-Instruct", 18.0 * wave, 0.25, 0.7, 1.1, 0.0005, 1,
                             running=12, tp_size=1, **LLM)],
        "facesocial": [
            ModelLoad("yolov10n", 40.0 * wave, 0.018, 0.045, 0.08, 0.0002, queue,
                      vram_bytes=int(1.2 * GIB)),
            ModelLoad("adaface_ir101", 25.0 * wave, 0.03, 0.07, 0.12, 0.0004, 2,
                      vram_bytes=int(2.1 * GIB)),
        ],
        "triton": [ModelLoad("bge-large-en-v1.5", 120.0 * wave, 0.006, 0.015, 0.03, 0.0, 1)],
    }  # fmt: skip


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


@dataclass(frozen=True, slots=True)
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
