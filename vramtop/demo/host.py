"""The embedded demo host behind ``--demo``: four GPUs serving several model families.

It goes through the production code paths: the real NVML source over a simulated NVML backend,
the real collector, attribution and exports. Only what cannot exist here is simulated: the GPUs,
the host's load and the processes' command lines. Values move with time, so a live view moves.
These are the simulated parts; vramtop.wiring assembles them into a collector.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from vramtop.demo.scenario import Gpu, Process, Scenario
from vramtop.demo.serving import squeeze
from vramtop.demo.simnvml import SimulatedNvml
from vramtop.health import xid_info
from vramtop.model import HealthEvent, HostReading
from vramtop.records import record
from vramtop.sources.nvml import GpuSelection, NvmlReading, NvmlSource
from vramtop.sources.procs import ProcessInspector, ProcInfo, ProcUsage
from vramtop.sources.scrape import ScrapeReading, ScrapeSource

if TYPE_CHECKING:
    from vramtop.demo.fleet_servers import DemoFleet
    from vramtop.demo.serving import DemoServing
    from vramtop.profiles import Profile
    from vramtop.sources.http import Endpoint

HOSTNAME = "demo-gpu-host"
GIB = 2**30
_SPAWN = ("python3", "-c", "from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=5)")
_VLLM = (
    "/opt/venv/bin/python3",
    "-m",
    "vllm.entrypoints.openai.api_server",
    "--model",
    "meta-llama/Llama-3.1-70B-Instruct",
    "--served-model-name",
    "llama-3.1-70b",
    "--tensor-parallel-size",
    "2",
    "--port",
    "8000",
)


@record
class DemoProcess:
    pid: int
    gpu: int
    gib: float | None  # None: NVML cannot say (as on some drivers)
    user: str
    argv: tuple[str, ...]
    parent: tuple[str, ...] = ()


PROCESSES = (
    DemoProcess(4101, 0, 71.2, "svc-infer", _SPAWN, _VLLM),
    DemoProcess(4102, 1, 71.2, "svc-infer", _SPAWN, _VLLM),
    DemoProcess(
        4200,
        2,
        31.5,
        "svc-infer",
        (
            "python3",
            "-m",
            "sglang.launch_server",
            "--model-path",
            "Qwen/Qwen2.5-7B-Instruct",
            "--mem-fraction-static",
            "0.4",
            "--port",
            "30000",
        ),
    ),
    DemoProcess(
        4300,
        2,
        5.4,
        "svc-infer",
        (
            "/usr/local/bin/llama-server",
            "-m",
            "/models/Mistral-7B-Instruct-v0.3-Q4_K_M.gguf",
            "-ngl",
            "99",
            "--metrics",
        ),
    ),
    DemoProcess(
        4400,
        3,
        1.2,
        "facesocial",
        ("python3", "-m", "facesocial.serve", "--model-name", "yolov10n", "--port", "8101"),
    ),
    DemoProcess(
        4401,
        3,
        2.1,
        "facesocial",
        ("python3", "-m", "facesocial.serve", "--model-name", "adaface_ir101", "--port", "8102"),
    ),
    DemoProcess(
        4500,
        3,
        3.3,
        "triton-server",
        (
            "tritonserver",
            "--model-repository=/models",
            "--model-control-mode=explicit",
            "--load-model",
            "bge-large-en-v1.5",
        ),
    ),
    DemoProcess(4600, 3, None, "alice", ("python3", "notebook_kernel.py", "--port", "8888")),
)
_GPU_NAME = "NVIDIA H100 80GB HBM3"


# GPU health incidents, believable and periodic: GPU 0 power-capped under load, GPU 1 counting
# corrected ECC errors, GPU 2 with a remapped row waiting for a reset, GPU 3 an XID 13 (a
# graphics engine exception, the notebook's) every few minutes, the first just before the demo
# starts so a one-shot frame already shows it.
CAP_AT = 75  # GPU 0 hits its power cap above this utilisation (%)
SBE_EVERY = 30.0  # seconds between corrected ECC errors on GPU 1
XID_GPU, XID_CODE = 3, 13
XID_EVERY = 420.0
XID_FIRST = -60.0  # seconds after the demo starts (before it: already in the list)
XID_KEPT = 3600.0  # how far back the list of events reaches


def scenario_at(t: float, start: float | None = None) -> Scenario:
    """The demo host at epoch ``t`` (``start``: when the demo started, for counts that rise);
    a slow wave plus a VRAM squeeze on GPU 3 every 10 minutes, and the health incidents."""
    up = 0.0 if start is None else max(0.0, t - start)
    wave = math.sin(t / 40.0)
    gpus = []
    for index in range(4):
        procs = tuple(
            Process(
                pid=p.pid,
                used_memory=None if p.gib is None else int(p.gib * GIB * (1 + 0.01 * wave)),
                sm_util=int(max(0, min(100, 50 + 45 * math.sin(t / 13.0 + index + p.pid)))),
                mem_util=int(max(0, min(100, 30 + 25 * math.sin(t / 11.0 + p.pid)))),
            )
            for p in PROCESSES
            if p.gpu == index
        )
        used = sum(p.used_memory or 0 for p in procs) + int(0.6 * GIB)
        if index == 3:
            used += int(70 * GIB * squeeze(t)) + 4 * GIB  # the notebook nobody accounted for
        util = 55 + 35 * math.sin(t / 13.0 + index)
        power = int(120_000 + 5_000 * util)
        capped = index == 0 and util > CAP_AT
        sbe = 37 + int(up / SBE_EVERY) if index == 1 else 0
        gpus.append(
            Gpu(
                name=_GPU_NAME,
                uuid=f"GPU-de300000-0000-4000-8000-00000000000{index}",
                memory_total=80 * GIB,
                memory_used=min(used, 80 * GIB - 512 * 2**20),
                memory_reserved=512 * 2**20,
                utilization_gpu=int(max(0, min(100, util))),
                utilization_memory=int(max(0, min(100, util * 0.6))),
                temperature=int(48 + util / 4),
                power_usage_mw=699_000 if capped else power,
                power_limit_mw=700_000,
                clocks_event_reasons=0x4 if capped else 0,
                ecc_sbe_volatile=sbe,
                ecc_sbe_aggregate=1_912 + sbe if index == 1 else 0,
                remapped_cor=1 if index == 2 else 0,
                remap_pending=1 if index == 2 else 0,
                pcie_replay=3 if index == 1 else 0,
                pcie_tx_kbps=int(900_000 + 700_000 * max(0.0, wave)),
                pcie_rx_kbps=int(2_400_000 + 1_500_000 * max(0.0, wave)),
                nvlink_links=18,
                processes=procs,
            )
        )
    return Scenario(driver_version="550.54.15 (demo)", gpus=tuple(gpus))


def xid_times(start: float, now: float) -> list[float]:
    """When GPU 3's XID 13s happened, up to ``now``, within the kept window."""
    first = start + XID_FIRST
    if now < first:
        return []
    k_low = max(0, math.ceil((now - XID_KEPT - first) / XID_EVERY))
    k_high = math.floor((now - first) / XID_EVERY)
    return [first + k * XID_EVERY for k in range(k_low, k_high + 1)]


class DemoNvmlSource(NvmlSource):
    """The real NVML source; before each poll the simulated driver moves to the current time.
    GPU 3's XIDs follow the demo's clock (a timetable), so a one-shot frame and a replayed
    demo show them at the same moments; the real event thread runs beside it, idle."""

    def __init__(self, selection: GpuSelection | None, clock: Callable[[], float]) -> None:
        self._start = clock()
        self._sim = SimulatedNvml(scenario_at(self._start, self._start))
        self._wall = clock
        self._xid_shown = selection is None or selection.matches(
            XID_GPU, self._sim.scenario.gpu_uuid(XID_GPU)
        )
        # The demo clock also paces the slow counters, so ECC counts rise on a replayed clock.
        super().__init__(backend=self._sim, selection=selection, clock=clock)

    def poll(self) -> NvmlReading:
        now = self._wall()
        self._sim.scenario = scenario_at(now, self._start)
        reading = super().poll()
        if not self._xid_shown:
            return reading
        info = xid_info(XID_CODE)
        uuid = self._sim.scenario.gpu_uuid(XID_GPU)
        xids = tuple(
            HealthEvent(at, uuid, XID_GPU, "xid", XID_CODE, info.meaning, info.severity)
            for at in xid_times(self._start, now)
        )
        events = tuple(sorted((*reading.events, *xids), key=lambda e: e.time))
        return replace(reading, events=events)


class DemoInspector(ProcessInspector):
    """The demo's processes do not exist on this machine: describe them from the table."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self._table = {p.pid: p for p in PROCESSES}
        start = clock()
        # Servers up for days; the notebook kernel for an hour and a half.
        self._started = {
            p.pid: start - (5400 if p.user == "alice" else 3 * 86400) for p in PROCESSES
        }

    def usage(self, pid: int) -> ProcUsage:
        # Never /proc: a real process here may have the same pid as a simulated one.
        p = self._table.get(pid)
        if p is None:
            return super().usage(pid)
        busy = 85.0 if p.user == "svc-infer" else 4.0
        rss = int((p.gib or 1.0) * 0.08 * 2**30)  # host memory: weights are mapped, not resident
        return ProcUsage(busy + pid % 7, rss, self._started.get(pid))

    def describe(self, pid: int) -> ProcInfo:
        p = self._table.get(pid)
        if p is None:
            return super().describe(pid)
        ancestors = ((4100, p.parent),) if p.parent else ()
        return ProcInfo(pid, p.user, p.argv[0].rsplit("/", 1)[-1], p.argv, None, ancestors)


class DemoHostSource:
    name = "host"
    hostname = HOSTNAME

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock

    def poll(self) -> HostReading:
        t = self._clock()
        return HostReading(
            hostname=HOSTNAME,
            cpu_percent=round(35 + 20 * math.sin(t / 17.0), 1),
            cpu_count=64,
            memory_used_bytes=int((310 + 20 * math.sin(t / 50.0)) * GIB),
            memory_total_bytes=1024 * GIB,
            load_average=(18.2, 17.5, 16.9),
            disk_path="/",
            disk_used_bytes=1210 * GIB,
            disk_total_bytes=3500 * GIB,
        )


class DemoScrapeSource(ScrapeSource):
    """The real scrape source, reading simulated servers (and the demo fleet's exporters) whose
    load follows the clock."""

    def __init__(
        self,
        serving: DemoServing,
        endpoints: list[Endpoint],
        profiles: list[Profile],
        hosts: list[str],
        fleet: DemoFleet | None = None,
    ) -> None:
        """``hosts``: each endpoint's host; they all listen on 127.0.0.1."""
        self._serving = serving
        self._fleet = fleet
        jobs = [serving.job(e.url) for e in endpoints]
        super().__init__(endpoints, profiles, first_gap=0.2, window=30.0, hosts=hosts, jobs=jobs)

    def backfill(self, model: str, window: float) -> dict[str, list[tuple[float, float]]]:
        """The demo host's past for its own models, computed from its timeline; {} for the
        demo fleet's (their charts are fleet-wide, from local history)."""
        from vramtop.demo.backfill import history

        if self._fleet is not None and model in self._fleet.models():
            return {}
        return history(model, window, self._serving.now())

    def poll(self) -> ScrapeReading:
        self._serving.advance()
        if self._fleet is not None:
            self._fleet.advance()
        reading = super().poll()
        # The demo host's own servers are this machine, which the host source describes: a
        # fleet host reading for it would stand in for this machine's row (no CPU, memory),
        # and would make the one-host demo a fleet of one.
        hosts = tuple(h for h in reading.hosts if h.instance != HOSTNAME)
        return replace(reading, hosts=hosts)
