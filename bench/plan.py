"""What a run measures (full or short) and what every phase shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from host import FakeHost, Serving
from peers import Tool
from report import Report
from term import Tmux

BENCH = Path(__file__).resolve().parent
PEERS_VENV = BENCH / ".peers"
STATIC_NVML = (
    "nvmlInit_v2",
    "nvmlInitWithFlags",
    "nvmlSystemGetDriverVersion",
    "nvmlDeviceGetCount_v2",
    "nvmlDeviceGetHandleByIndex_v2",
    "nvmlDeviceGetHandleByUUID",
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetMigMode",
)


@dataclass(frozen=True)
class Plan:
    warmup: float  # seconds between starting the live views and the first window
    window: float
    windows: int
    once_reps: int
    first_reps: int
    refreshes: int
    render_frames: int
    models: tuple[int, ...]
    hosts: tuple[int, ...]
    scale_interval: int  # the fleet exporters' scrape interval
    peers: bool
    long_s: float = 0.0
    startup_reps: int = 10  # runs of --version and of --help


FULL = Plan(15, 30, 2, 5, 3, 10, 120, (1, 10, 100, 1000), (10, 100, 1000), 15, True)
SHORT = Plan(4, 3, 2, 1, 1, 3, 15, (1, 10), (1, 10), 1, False)


@dataclass
class Bench:
    plan: Plan
    work: Path
    out: Path
    report: Report
    host: FakeHost
    serving: Serving
    tmux: Tmux
    env: dict[str, str]
    vramtop: list[str]
    peers: list[Tool]
    results: dict[str, object] = field(default_factory=dict)
