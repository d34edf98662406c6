"""The demo fleet behind ``--demo fleet``: six simulated GPU hosts beside the demo host.

What each host is and does at a given time: its GPUs and the models on them (as the Frame its
own vramtop exporter would hold), its servers' load, and the alerts the shipped rules would
fire. Worth looking at: llama-3.1-70b replicated on three hosts with one replica slow (gpu-a2,
p95 past its target, queue building, alerts firing), a GPU with no VRAM left (gpu-b1), and a
host whose exporter refuses connections (gpu-b3). demo/fleet_servers.py serves them.
"""

from __future__ import annotations

import math
from types import MappingProxyType

from vramtop.demo.exporter import GIB, ModelLoad
from vramtop.model import (
    AlertReading,
    Frame,
    GpuReading,
    HostReading,
    ModelReading,
    ProcessReading,
    SourceStatus,
)
from vramtop.records import record

H100 = "NVIDIA H100 80GB HBM3"
A100_80 = "NVIDIA A100-SXM4-80GB"
A100_40 = "NVIDIA A100-SXM4-40GB"
L40S = "NVIDIA L40S"
_OVERHEAD = int(0.6 * GIB)  # what the driver and CUDA contexts hold besides the processes
_IDLE = 4 * 2**20  # an idle GPU's used memory
_LLM = {"ttft_p95": 0.35, "kv_cache_usage": 0.5, "preemptions_per_second": 0.0}


@record
class Replica:
    """One model served on one host: a server of ``family`` with a process per GPU."""

    model: str
    family: str  # the simulated server: vllm, sglang, triton or facesocial
    gpus: tuple[int, ...]
    gib: float  # VRAM per GPU
    rps: float
    p95: float  # seconds
    queue: int = 1


@record
class FleetHost:
    name: str  # its host key: what the scrape of its exporter and servers is named
    gpu: str
    gpu_gib: int
    gpu_count: int
    replicas: tuple[Replica, ...] = ()
    down: bool = False  # its exporter refuses connections from the start


HOSTS = (
    FleetHost("gpu-a1", H100, 80, 8, (
        Replica("llama-3.1-70b", "vllm", (0, 1, 2, 3), 71.0, 6.5, 1.3, 2),
        Replica("Qwen/Qwen2.5-7B-Instruct", "sglang", (4,), 31.5, 19.0, 0.65),
    )),
    # The slow replica: the same model, three times the latency and a queue building.
    FleetHost("gpu-a2", H100, 80, 8, (
        Replica("llama-3.1-70b", "vllm", (0, 1, 2, 3), 74.5, 4.0, 4.6, 64),
        Replica("llama-3.1-8b", "vllm", (4,), 20.5, 30.0, 0.45),
    )),
    FleetHost("gpu-a3", A100_80, 80, 4, (
        Replica("Qwen/Qwen2.5-7B-Instruct", "sglang", (0, 1), 33.0, 17.0, 0.7),
    )),
    # GPU 1 has no VRAM left: llama-3.1-8b with --gpu-memory-utilization 0.99 on a 40 GB card.
    FleetHost("gpu-b1", A100_40, 40, 4, (
        Replica("bge-large-en-v1.5", "triton", (0,), 3.3, 110.0, 0.016),
        Replica("llama-3.1-8b", "vllm", (1,), 38.9, 24.0, 0.5, 3),
    )),
    FleetHost("gpu-b2", L40S, 48, 2, (
        Replica("yolov10n", "facesocial", (0,), 1.2, 38.0, 0.045, 2),
        Replica("adaface_ir101", "facesocial", (0,), 2.1, 22.0, 0.07, 1),
        Replica("bge-large-en-v1.5", "triton", (1,), 3.3, 95.0, 0.015),
    )),
    FleetHost("gpu-b3", H100, 80, 8, down=True),
)  # fmt: skip


def gpu_uuid(host: int, gpu: int) -> str:
    return f"GPU-f1ee7{host:03x}-0000-4000-8000-{gpu:012x}"


def _pid(host: int, replica: int, gpu: int) -> int:
    return 3000 + 100 * host + 10 * replica + gpu


def frame_at(index: int, t: float) -> Frame:
    """Host ``HOSTS[index]`` at epoch ``t``, as its own vramtop would collect it."""
    host = HOSTS[index]
    wave = math.sin(t / 40.0 + index)
    procs: dict[int, list[ProcessReading]] = {g: [] for g in range(host.gpu_count)}
    models = []
    for r, rep in enumerate(host.replicas):
        used = int(rep.gib * GIB * (1 + 0.005 * wave))
        pids = tuple(_pid(index, r, g) for g in rep.gpus)
        for pid, g in zip(pids, rep.gpus, strict=True):
            procs[g].append(ProcessReading(pid, g, used, user="svc-infer", model=rep.model))
        models.append(ModelReading(rep.model, used * len(pids), pids, rep.gpus, ("cmdline",)))
    total = host.gpu_gib * GIB
    gpus = []
    for g, ps in procs.items():
        used = sum(p.used_memory_bytes or 0 for p in ps) + _OVERHEAD if ps else _IDLE
        busy = 55 + 35 * math.sin(t / 13.0 + g + index) if ps else 0.0
        gpus.append(
            GpuReading(
                index=g,
                uuid=gpu_uuid(index, g),
                name=host.gpu,
                memory_used_bytes=min(used, total - 64 * 2**20),
                memory_total_bytes=total,
                utilization_percent=float(round(max(0.0, min(100.0, busy)))),
                processes=tuple(ps),
            )
        )
    return Frame(
        time=t,
        host=HostReading(hostname=host.name),
        gpus=tuple(gpus),
        models=tuple(models),
        sources=(SourceStatus("host", "ok"), SourceStatus("nvml", "ok")),
        driver_version="550.54.15 (demo)",
        demo=True,
    )


def loads_at(index: int, t: float) -> dict[str, list[ModelLoad]]:
    """What each of the host's simulated servers is doing at epoch ``t``, by family."""
    out: dict[str, list[ModelLoad]] = {}
    wave = 1 + 0.15 * math.sin(t / 30.0 + index)
    for rep in HOSTS[index].replicas:
        extra: dict = {}
        if rep.family in ("vllm", "sglang"):  # tokens per request: 900 in, 150 out
            tokens = {"prompt_tokens_per_second": rep.rps * wave * 900,
                      "generation_tokens_per_second": rep.rps * wave * 150}  # fmt: skip
            extra = {**_LLM, **tokens, "running": 16}
        elif rep.family == "facesocial":
            extra = {"vram_bytes": int(rep.gib * GIB) * len(rep.gpus)}
        load = ModelLoad(rep.model, rep.rps * wave, rep.p95 * 0.43, rep.p95, rep.p95 * 1.57,
                         0.001, rep.queue, **extra)  # fmt: skip
        out.setdefault(rep.family, []).append(load)
    return out


# What the shipped rules (vramtop/rules) would fire over this fleet, always: firing from the
# start, so a one-shot frame shows them too.
ALERTS = (
    ("SlowAPIResponse", "warning", {"model_name": "llama-3.1-70b", "instance": "gpu-a2:8000"},
     "p95 latency of llama-3.1-70b is above 1 s", 900),
    ("ModelQueueBacklog", "warning", {"model_name": "llama-3.1-70b", "instance": "gpu-a2:8000"},
     "Model llama-3.1-70b has more than 50 requests queued", 420),
    ("VRAMExhausted", "critical", {"gpu": "1", "instance": "gpu-b1:19400"},
     "VRAM on GPU 1 above 95 %", 2400),
)  # fmt: skip


def alerts_at(t: float) -> tuple[AlertReading, ...]:
    return tuple(
        AlertReading(
            name=name,
            severity=severity,
            state="firing",
            summary=summary + " (demo)",
            labels=MappingProxyType({"alertname": name, "severity": severity, **labels}),
            active_since=t - age,
            source="demo",
        )
        for name, severity, labels, summary, age in ALERTS
    )
