"""Helpers for the TUI tests: hand-built Frame sequences, scripted collectors, waiting.

Imported by the other tests/test_tui_*.py files; the tests at the bottom check the helpers.
"""

from __future__ import annotations

import asyncio
import io
import math
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from rich.console import Console

from vramtop.collector import models_of
from vramtop.config import Settings
from vramtop.history import History
from vramtop.model import (
    AlertReading,
    Frame,
    GpuHealth,
    GpuReading,
    HealthEvent,
    HostReading,
    MigReading,
    ModelReading,
    ProcessReading,
    SourceStatus,
    freeze,
)
from vramtop.tui.app import VramtopApp
from vramtop.tui.factory import build_app

GIB = 2**30
T0 = 1795000000.0  # a fixed clock: 2026-11-17T...Z, far from "now"
STEPS = 300  # frames in the prefilled history, one a second: the 5 minute window is full


def frame_at(step: int, demo: bool = False, hostile: bool = False) -> Frame:
    """The fixed test host at ``T0 + step`` seconds: four GPUs (one lost, one in MIG mode),
    three models with serving figures (one beyond its targets), alerts in every state."""
    t = T0 + step
    wave = math.sin(step / 25.0)
    procs = {
        0: (
            ProcessReading(
                4101,
                0,
                int((70 + wave) * GIB),
                "compute",
                "svc-infer",
                "python3",
                "python3 -m vllm.entrypoints.openai.api_server --served-model-name llama-70b",
                "llama-70b",
                "cmdline",
            ),
        ),
        1: (
            ProcessReading(
                4102,
                1,
                int((70 + wave) * GIB),
                "compute",
                "svc-infer",
                "python3",
                "python3 -m vllm.entrypoints.openai.api_server --served-model-name llama-70b",
                "llama-70b",
                "cmdline",
            ),
        ),
        2: (
            ProcessReading(
                4200,
                2,
                int(31 * GIB),
                "compute",
                "svc-infer",
                "python3",
                "python3 -m sglang.launch_server --model-path Qwen/Qwen2.5-7B-Instruct",
                "qwen-7b",
                "cmdline",
            ),
            ProcessReading(
                4300,
                2,
                int(5.5 * GIB),
                "compute",
                "svc-infer",
                "llama-server",
                "/usr/local/bin/llama-server -m /models/mistral-7b.gguf",
                "mistral-7b",
                "cmdline",
                mig_device="MIG-2a",
            ),
            ProcessReading(
                4600,
                2,
                None,
                "compute",
                None,
                None,
                None,
                None,
                None,
                detail="not visible here: it exited, or it runs in another PID namespace",
            ),
        ),
    }
    procs = {i: tuple(_busy(p, step) for p in ps) for i, ps in procs.items()}
    gpus = []
    for i in range(3):
        used = sum(p.used_memory_bytes or 0 for p in procs[i]) + GIB // 2
        util = 50 + 40 * math.sin(step / 15.0 + i)
        gpus.append(
            GpuReading(
                index=i,
                uuid=f"GPU-0000000{i}-aaaa-bbbb-cccc-dddddddddddd",
                name="NVIDIA H100 80GB HBM3",
                memory_used_bytes=min(used, 80 * GIB),
                memory_total_bytes=80 * GIB,
                memory_reserved_bytes=GIB // 2,
                utilization_percent=round(util),
                memory_utilization_percent=round(util * 0.6),
                temperature_c=round(45 + util / 3) if i != 1 else None,
                power_watts=round(150 + 5 * util),
                power_limit_watts=700.0,
                mig_mode=i == 2,
                mig_devices=(MigReading("MIG-2a", 1, 37 * GIB, 40 * GIB),) if i == 2 else (),
                processes=procs[i],
                health=fixture_health(i, step),
                unavailable=freeze({"temperature_c": "not supported on this GPU"})
                if i == 1
                else freeze({}),
            )
        )
    gpus.append(
        GpuReading(
            3,
            "GPU-00000003-aaaa",
            "NVIDIA L4",
            "lost",
            unavailable=freeze({"state": "GPU is lost (fell off the bus or needs a reset)"}),
        )
    )
    models = []
    serving = {
        "llama-70b": (0.045, 0.090 + 0.03 * wave, 0.180, 42.0, 0.0004, 12 + 8 * wave),
        "qwen-7b": (0.020, 0.150, 0.300, 120.0, 0.004, 75.0),  # beyond every target
        "mistral-7b": (None, None, None, None, None, None),  # NVML only: no serving metrics
    }
    for m in models_of(gpus):
        p50, p95, p99, rps, err, queue = serving.get(m.name, (None,) * 6)
        models.append(
            ModelReading(
                name=m.name,
                vram_bytes=m.vram_bytes,
                processes=m.processes,
                gpus=m.gpus,
                sources=m.sources,
                latency_p50_seconds=p50,
                latency_p95_seconds=p95,
                latency_p99_seconds=p99,
                requests_per_second=rps,
                error_ratio=err,
                queue_length=queue,
                instances=("10.0.0.5:8000",) if p50 else (),
                profile="vllm" if p50 else None,
            )
        )
    alerts = (
        AlertReading(
            "ModelQueueBacklog",
            "warning",
            "firing",
            "qwen-7b queue above 50 for 5m",
            freeze({"model": "qwen-7b"}),
            T0 - 600,
        ),
        AlertReading(
            "HighLatency",
            "critical",
            "pending",
            "qwen-7b p95 above 100ms",
            freeze({"model": "qwen-7b"}),
            T0 - 30,
        ),
        AlertReading(
            "VRAMExhausted",
            "critical",
            "firing",
            "GPU 2 VRAM above 95%",
            freeze({"gpu": "2"}),
            T0 - 3600,
            silenced=True,
        ),
    )
    if hostile:
        from samples import HOSTILE

        gpus[0] = GpuReading(
            0,
            "GPU-x",
            HOSTILE,
            memory_used_bytes=GIB,
            memory_total_bytes=80 * GIB,
            processes=(
                ProcessReading(666, 0, GIB, "compute", HOSTILE, HOSTILE, HOSTILE, HOSTILE, "rule"),
            ),
        )
        models.append(ModelReading(HOSTILE, GIB, (666,), (0,), ("rule",)))
        alerts = (*alerts, AlertReading(HOSTILE, "critical", "firing", HOSTILE, freeze({}), t))
    return Frame(
        time=t,
        host=HostReading(
            HOSTILE if hostile else "gpu-box-01",
            42.5,
            64,
            300 * GIB,
            1024 * GIB,
            (18.2, 17.5, 16.9),
            "/",
            1200 * GIB,
            3500 * GIB,
        ),
        gpus=tuple(gpus),
        models=tuple(models),
        alerts=alerts,
        sources=(
            SourceStatus("host", "ok"),
            SourceStatus("nvml", "ok"),
            SourceStatus("prometheus", "stale", "no answer within 5 s", since=t - 12),
            SourceStatus("alerts", "error", "connection refused by 127.0.0.1:9093"),
        ),
        driver_version="550.54.15",
        demo=demo,
        events=tuple(e for e in FIXTURE_EVENTS if e.time <= t),
    )


# GPU 2 (serving qwen-7b) logs an XID 13 at step 280; GPU 3 fell off the bus at step 100.
FIXTURE_EVENTS = (
    HealthEvent(
        T0 + 100, "GPU-00000003-aaaa", 3, "gpu_lost", None, "GPU fell off the bus", "critical"
    ),
    HealthEvent(
        T0 + 280,
        "GPU-00000002-aaaa-bbbb-cccc-dddddddddddd",
        2,
        "xid",
        13,
        "graphics engine exception",
        "warning",
    ),
)
NO_NVLINK = "this GPU has no NVLink"


def fixture_health(i: int, step: int) -> GpuHealth:
    """GPU 0 healthy; GPU 1 power-capped while busy; GPU 2 thermally throttled for steps
    240-269, on a x8 link, without NVLink (its reason shown)."""
    util = 50 + 40 * math.sin(step / 15.0 + i)
    reasons: tuple[str, ...] = ()
    if i == 1 and util > 80:
        reasons = ("sw_power_cap",)
    if i == 2 and 240 <= step < 270:
        reasons = ("sw_thermal", "hw_thermal")
    return GpuHealth(
        throttle_reasons=reasons,
        performance_state=0,
        ecc_mode=True,
        ecc_corrected_volatile=3 if i == 2 else 0,
        ecc_uncorrected_volatile=0,
        ecc_corrected_aggregate=41 if i == 2 else 0,
        ecc_uncorrected_aggregate=0,
        remapped_rows_correctable=1 if i == 2 else 0,
        remapped_rows_uncorrectable=0,
        remapped_rows_pending=False,
        remapped_rows_failure=False,
        pcie_replay_count=7 if i == 2 else 0,
        pcie_link_gen=5,
        pcie_link_gen_max=5,
        pcie_link_width=16,
        pcie_link_width_max=16,
        pcie_tx_bytes_per_second=1_500_000_000,
        pcie_rx_bytes_per_second=300_000_000,
        nvlink_links=None if i == 2 else 18,
        nvlink_errors=None if i == 2 else freeze_counts({"replay": 0, "recovery": 0}),
        unavailable=freeze(
            {
                "retired_pages_sbe": "not supported on this GPU",
                "retired_pages_dbe": "not supported on this GPU",
                "retired_pages_pending": "not supported on this GPU",
                **({"nvlink_links": NO_NVLINK, "nvlink_errors": NO_NVLINK} if i == 2 else {}),
            }
        ),
    )


def freeze_counts(counts: dict[str, int]) -> MappingProxyType[str, int]:
    return MappingProxyType(dict(counts))


def _busy(p: ProcessReading, step: int) -> ProcessReading:
    """Per-process use: SM and memory-controller %, host CPU, RSS, started 2 h before T0
    (a PID-namespace stranger has none of it)."""
    if p.user is None:
        return p
    return replace(
        p,
        sm_percent=float(p.pid % 97),
        memory_controller_percent=float(p.pid % 31),
        cpu_percent=float(100 + p.pid % 7),
        rss_bytes=(p.pid % 13 + 2) * GIB,
        started_at=T0 - 7200 + (p.pid % 100),
    )


def prefilled_history(steps: int = STEPS, **kw: Any) -> History:
    history = History()
    for step in range(steps):
        history.add(frame_at(step, **kw))
    return history


class ScriptedCollector:
    """Returns the given Frames in order, then the last one again; counts calls."""

    def __init__(self, frames: Sequence[Frame]) -> None:
        self.frames = list(frames)
        self.calls = 0
        self.lock = threading.Lock()

    def collect(self) -> Frame:
        with self.lock:
            frame = self.frames[min(self.calls, len(self.frames) - 1)]
            self.calls += 1
        return frame


class CountingCollector:
    """A new Frame every call, one second later each time."""

    def __init__(self, start: int = STEPS) -> None:
        self.calls = 0
        self.start = start

    def collect(self) -> Frame:
        self.calls += 1
        return frame_at(self.start + self.calls)


class HangingCollector:
    """The first collect() answers; the next ones block until ``release`` is set."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def collect(self) -> Frame:
        self.calls += 1
        if self.calls > 1:
            self.release.wait(timeout=60)
        return frame_at(STEPS + self.calls)


class BackfillCollector(ScriptedCollector):
    """Offers ``backfill`` as the Prometheus collector will: series over a window."""

    def __init__(self, frames: Sequence[Frame]) -> None:
        super().__init__(frames)
        self.backfills: list[tuple[str, float]] = []

    def backfill(self, model: str, window: float) -> dict[str, list[tuple[float, float]]]:
        self.backfills.append((model, window))
        end = self.frames[-1].time
        points = [end - window + k * window / 100 for k in range(100)]
        return {
            "latency_p95_seconds": [(t, 0.05 + 0.01 * math.sin(t)) for t in points],
            "requests_per_second": [(t, 40.0) for t in points],
            "queue_length": [(t, float("nan")) for t in points],  # dropped, not drawn
        }


class Clock:
    """A settable clock: the app's notion of now."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_app(
    collector: Any,
    *,
    history: History | None = None,
    clock: Callable[[], float] | None = None,
    interval: float = 3600.0,
    tmp_path: Path | None = None,
    theme: str | None = None,
    env: dict[str, str] | None = None,
    settings: Settings | None = None,
) -> VramtopApp:
    """An app as the CLI builds it, but with a fixed clock and no config discovery."""
    settings = settings or Settings(interval=interval)
    env = env if env is not None else {"XDG_CONFIG_HOME": str(tmp_path or "/nonexistent")}
    return build_app(
        settings,
        collector,
        theme=theme,
        env=env,
        history=history,
        clock=clock or Clock(T0 + STEPS + 1),
        snapshot_dir=tmp_path,
        cursor_blink=False,
    )


async def wait_until(pilot: Any, condition: Callable[[], bool], what: str = "") -> None:
    """Poll ``condition`` between UI steps, with a generous deadline (not a timing check)."""
    deadline = time.monotonic() + 20.0
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what or condition}")
        await pilot.pause(0.02)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def screen_text(app: VramtopApp) -> str:
    """What the terminal shows now, as plain text (as export_screenshot renders it)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text(styles=False)


# -- the helpers themselves --------------------------------------------------------------


def test_fixed_frames_are_deterministic():
    assert frame_at(5) == frame_at(5)
    f = frame_at(0)
    assert [g.state for g in f.gpus] == ["ok", "ok", "ok", "lost"]
    assert {m.name for m in f.models} == {"llama-70b", "qwen-7b", "mistral-7b"}


def test_scripted_collector_repeats_the_last_frame():
    c = ScriptedCollector([frame_at(0), frame_at(1)])
    assert [c.collect().time for _ in range(3)] == [T0, T0 + 1, T0 + 1]
