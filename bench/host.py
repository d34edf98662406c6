"""The simulated inference host every tool looks at.

- 64 real sleeping processes with inference servers' command lines (a tiny C program that
  sleeps, started under the names ``python3``, ``tritonserver`` and
  ``text-generation-launcher``), so attribution runs through real psutil;
- the fake ``libnvidia-ml.so.1`` (tests/fakenvml) with a scenario of 8 x 80 GiB GPUs holding
  those processes, three of them with memory NVML cannot report;
- simulated exporters for the 20 models they serve (vLLM, SGLang, TGI, Triton, FaceSocial) and
  a DCGM exporter for the same GPUs, scraped by a real Prometheus with rules that fire on queue
  backlogs;
- on demand, a fleet for the scaling measurements: one vLLM exporter serving N models on one
  ``instance``, and H hosts (``instance`` ``hH-NNN``) with 4 models and 8 DCGM GPUs each.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests"))

from fakenvml import build as build_fake_nvml  # noqa: E402
from fakenvml import fake_env  # noqa: E402
from measure import compile_c  # noqa: E402
from prom import Prometheus  # noqa: E402

from vramtop.demo.exporter import GIB, GpuLoad, ModelLoad, SimulatedExporter  # noqa: E402
from vramtop.demo.loads import GpuProcess  # noqa: E402
from vramtop.demo.scenario import Gpu, Process, Scenario  # noqa: E402

GPUS = 8
SLOTS_PER_GPU = 8
RULES = BENCH / "alerts.rules.yml"
SHIPPED_RULES = REPO / "vramtop" / "rules" / "facesocial.rules.yml"

SLEEPER_C = r"""
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>
int main(void) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the benchmark */
    if (getppid() == 1) return 0;
    for (;;) pause();
}
"""
PROGRAMS = ("python3", "tritonserver", "text-generation-launcher")


@dataclass(frozen=True, slots=True)
class Served:
    """One served model: its server family, weights, replicas (processes) and load."""

    name: str
    family: str
    weights: str
    procs: int
    gib: float  # VRAM per process
    rps: float
    p50: float
    queue: int = 0
    tp: int = 1


# 20 models, 64 processes: two tensor-parallel 70B-class models over 4 GPUs each, the rest
# replicated. Three have more than 50 requests queued, which the rules turn into alerts.
MODELS = (
    Served("llama-3.1-70b", "vllm", "meta-llama/Llama-3.1-70B-Instruct", 4, 34.0, 6.0, 1.8, tp=4),
    Served("qwen2.5-72b", "vllm", "Qwen/Qwen2.5-72B-Instruct", 4, 35.0, 4.5, 2.1, tp=4),
    Served("llama-3.1-8b", "vllm", "meta-llama/Llama-3.1-8B-Instruct", 4, 5.5, 40.0, 0.35),
    Served("mistral-nemo-12b", "vllm", "mistralai/Mistral-Nemo-Instruct-2407", 4, 5.0, 22.0, 0.5),
    Served("gemma-2-27b", "vllm", "google/gemma-2-27b-it", 3, 6.0, 9.0, 1.1, queue=73),
    Served("phi-3.5-mini", "vllm", "microsoft/Phi-3.5-mini-instruct", 3, 2.5, 55.0, 0.2),
    Served("deepseek-coder-v2-lite", "vllm", "deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct", 3,
           4.0, 14.0, 0.8),
    Served("qwen2.5-7b", "sglang", "Qwen/Qwen2.5-7B-Instruct", 3, 5.0, 35.0, 0.3),
    Served("qwen2.5-coder-32b", "sglang", "Qwen/Qwen2.5-Coder-32B-Instruct", 3, 6.5, 7.0, 1.4),
    Served("llama-3.2-3b", "sglang", "meta-llama/Llama-3.2-3B-Instruct", 3, 2.0, 80.0, 0.12),
    Served("mixtral-8x7b", "sglang", "mistralai/Mixtral-8x7B-Instruct-v0.1", 3, 6.5, 11.0, 0.9,
           queue=58),
    Served("starcoder2-15b", "tgi", "bigcode/starcoder2-15b", 3, 4.5, 12.0, 0.7),
    Served("falcon-11b", "tgi", "tiiuae/falcon-11B", 3, 4.0, 10.0, 0.6),
    Served("bge-large-en-v1.5", "triton", "BAAI/bge-large-en-v1.5", 3, 1.5, 240.0, 0.008),
    Served("e5-mistral-7b", "triton", "intfloat/e5-mistral-7b-instruct", 3, 3.0, 60.0, 0.04),
    Served("whisper-large-v3", "triton", "openai/whisper-large-v3", 3, 3.5, 6.0, 0.9),
    Served("yolov10n", "facesocial", "yolov10n.onnx", 3, 1.0, 140.0, 0.015),
    Served("scrfd_10g", "facesocial", "scrfd_10g_bnkps.onnx", 3, 1.2, 95.0, 0.02, queue=64),
    Served("adaface_ir101", "facesocial", "adaface_ir101_webface12m.ckpt", 3, 1.8, 60.0, 0.03),
    Served("arcface_r100", "facesocial", "glint360k_r100.onnx", 3, 1.6, 70.0, 0.025),
)  # fmt: skip
UNAVAILABLE = {"whisper-large-v3"}  # NVML reports no per-process memory for these
FIRING = sorted(m.name for m in MODELS if m.queue > 50)


def argv_of(m: Served, replica: int) -> list[str]:
    """The command line each server family is started with (no value holds a space)."""
    port = 8000 + 10 * MODELS.index(m) + replica
    name, weights = m.name, m.weights
    if m.family == "vllm":
        tp = f" --tensor-parallel-size {m.tp}" if m.tp > 1 else ""
        line = (
            "/opt/vllm/bin/python3 -m vllm.entrypoints.openai.api_server --model "
            f"{weights} --served-model-name {name}{tp} --gpu-memory-utilization 0.9 --port {port}"
        )
    elif m.family == "sglang":
        line = (
            f"/opt/sglang/bin/python3 -m sglang.launch_server --model-path {weights} "
            f"--served-model-name {name} --mem-fraction-static 0.8 --port {port}"
        )
    elif m.family == "tgi":
        line = (
            f"text-generation-launcher --model-id {weights} --served-model-name {name} "
            f"--max-concurrent-requests 128 --port {port}"
        )
    elif m.family == "triton":
        line = (
            "tritonserver --model-repository=/models --model-control-mode=explicit "
            f"--load-model {name} --http-port {port} --metrics-port {port + 2000}"
        )
    else:
        line = (
            f"/srv/facesocial/.venv/bin/python3 -m facesocial.serve --model-name {name} "
            f"--weights /models/{weights} --port {port}"
        )
    return line.split()


def build_sleeper(bin_dir: Path) -> dict[str, Path]:
    """The sleeper compiled once, copied under each program name (the process's ``comm``)."""
    binary = compile_c(SLEEPER_C, bin_dir / "sleeper")
    out = {}
    for name in PROGRAMS:
        shutil.copyfile(binary, bin_dir / name)
        os.chmod(bin_dir / name, 0o755)
        out[name] = bin_dir / name
    return out


def _program(argv0: str) -> str:
    base = os.path.basename(argv0)
    return base if base in PROGRAMS else "python3"


class FakeHost:
    """The sleepers and the fake NVML scenario that reports them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[subprocess.Popen] = []
        self.placement: list[tuple[Served, int, int]] = []  # (model, gpu, pid)
        self.lib: Path | None = None
        self.scenario_path = workdir / "scenario.toml"

    def start(self) -> None:
        self.lib = build_fake_nvml(self.workdir / "lib")
        programs = build_sleeper(self.workdir / "bin")
        free = [SLOTS_PER_GPU] * GPUS
        tp_next = 0
        for m in MODELS:
            for replica in range(m.procs):
                if m.tp > 1:
                    gpu = tp_next
                    tp_next += 1
                else:  # the GPU with the most free slots, lowest index first
                    gpu = max(range(GPUS), key=lambda g: (free[g], -g))
                free[gpu] -= 1
                argv = argv_of(m, replica)
                proc = subprocess.Popen(
                    argv,
                    executable=str(programs[_program(argv[0])]),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # Ctrl-C is ours to handle, not theirs
                )
                self.procs.append(proc)
                self.placement.append((m, gpu, proc.pid))
        assert all(f == 0 for f in free), free
        self.scenario().write(self.scenario_path)

    def scenario(self) -> Scenario:
        gpus = []
        for g in range(GPUS):
            util = (37 + 23 * g) % 61 + 35
            procs = tuple(
                # Every process sampled busy: NVML's two-call utilisation protocol, the costly path.
                Process(
                    pid,
                    None if m.name in UNAVAILABLE else int(m.gib * GIB),
                    sm_util=util // SLOTS_PER_GPU,
                    mem_util=util // (2 * SLOTS_PER_GPU),
                )
                for m, gpu, pid in self.placement
                if gpu == g
            )
            used = sum(m.gib for m, gpu, _ in self.placement if gpu == g) * GIB + GIB // 2
            gpus.append(
                Gpu(
                    memory_total=80 * GIB,
                    memory_used=min(int(used), 80 * GIB - GIB),
                    memory_reserved=512 * 2**20,
                    utilization_gpu=util,
                    utilization_memory=util * 2 // 3,
                    temperature=40 + util // 3,
                    power_usage_mw=(120 + 5 * util) * 1000,
                    power_limit_mw=700_000,
                    processes=procs,
                )
            )
        return Scenario(gpus=tuple(gpus))

    def gpu_loads(self) -> list[GpuLoad]:
        """The same GPUs as a DCGM exporter sees them (same UUIDs, so vramtop merges them)."""
        s = self.scenario()
        return [
            GpuLoad(
                index=i,
                uuid=s.gpu_uuid(i),
                memory_used_bytes=g.memory_used,
                memory_reserved_bytes=g.memory_reserved,
                utilization=g.utilization_gpu / 100,
                temperature_c=float(g.temperature),
                power_watts=g.power_usage_mw / 1000,
            )
            for i, g in enumerate(s.gpus)
        ]

    def env(self, base: dict[str, str]) -> dict[str, str]:
        assert self.lib is not None
        return fake_env(self.lib, self.scenario_path, base)

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(OSError):
                proc.kill()
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.procs.clear()


def _load(m: Served, instance: str | None = None) -> ModelLoad:
    llm = m.family in ("vllm", "sglang", "tgi")
    return ModelLoad(
        m.name,
        requests_per_second=m.rps,
        latency_p50=m.p50,
        latency_p95=m.p50 * 2.4,
        latency_p99=m.p50 * 3.9,
        error_ratio=0.002,
        queue_length=m.queue,
        vram_bytes=int(m.gib * m.procs * GIB) if m.family == "facesocial" else None,
        ttft_p95=m.p50 / 4 if llm else None,
        kv_cache_usage=0.62 if llm else None,
        running=12 if llm else 0,
        queue_time_p95=0.05 if m.queue else None,
        generation_tokens_per_second=m.rps * 180 if llm else 0.0,
        instance=instance,
    )


class Serving:
    """The exporters for the 20 models and the 8 GPUs, and the Prometheus that scrapes them."""

    def __init__(self, workdir: Path, host: FakeHost, scale_interval_s: int) -> None:
        self.prometheus = Prometheus(
            workdir / "prometheus", [RULES, SHIPPED_RULES], scale_interval_s
        )
        self.exporters: list[SimulatedExporter] = []
        self._host = host
        self.targets = 0
        self._fleet: list[tuple[SimulatedExporter, Path]] = []

    @property
    def url(self) -> str:
        return self.prometheus.url

    def start(self) -> None:
        self.prometheus.workdir.mkdir(parents=True, exist_ok=True)
        self.prometheus.start()
        families = ("vllm", "sglang", "triton", "facesocial")
        for family in families:
            models = [_load(m) for m in MODELS if m.family == family]
            self._serve(SimulatedExporter(family, models, gpus=[], triton_summaries=True))
        for m in MODELS:
            if m.family == "tgi":  # TGI has no model label: one job per model names it
                self._serve(SimulatedExporter("tgi", [_load(m)], gpus=[]), {"job": m.name})
        self._serve(SimulatedExporter("dcgm", gpus=self._host.gpu_loads()))

    def _serve(
        self, exporter: SimulatedExporter, labels: dict[str, str] | None = None, kind="plain"
    ) -> None:
        exporter.start()
        self.exporters.append(exporter)
        sd_file = self.prometheus.add_target(exporter.address, kind, labels)
        self.targets += kind != "scale"
        if kind == "scale":
            self._fleet.append((exporter, sd_file))

    def wait_ready(self, timeout: float = 60) -> None:
        """Every target up, every model's rates computable and the backlog alerts firing."""
        p = self.prometheus
        p.wait_for(
            'count(up{job!="bench-scale"} == 1)',
            lambda r: bool(r) and int(float(r[0]["value"][1])) >= self.targets,
            timeout,
            f"{self.targets} scrape targets up",
        )
        p.wait_for(
            'count(ALERTS{alertstate="firing",alertname=~".*QueueBacklog"})',
            lambda r: bool(r) and int(float(r[0]["value"][1])) >= len(FIRING),
            timeout,
            f"{len(FIRING)} firing queue alerts",
        )
        p.wait_for(
            "count(rate(vllm:e2e_request_latency_seconds_count[2m]) > 0)",
            lambda r: bool(r) and int(float(r[0]["value"][1])) >= 7,
            timeout,
            "two scrapes of every vLLM model",
        )

    def add_fleet(self, model_sizes: tuple[int, ...], host_sizes: tuple[int, ...]) -> None:
        """Scaling targets: ``m<N>`` = one instance with N models; ``h<H>-NNN`` = H hosts with
        4 models and 8 DCGM GPUs each (no Hostname label, as with dcgm-exporter
        --no-hostname, so the instance names the host). Once only."""
        if self._fleet:
            return
        models = [
            ModelLoad(f"model-{i:04d}", 10.0 + i % 7, 0.1, 0.25, 0.4, instance=f"m{n}")
            for n in model_sizes
            for i in range(n)
        ]
        fleet = [
            ModelLoad(f"llm-{c}", 8.0, 0.3, 0.7, 1.2, instance=f"h{h}-{j:03d}", queue_length=2)
            for h in host_sizes
            for j in range(h)
            for c in "abcd"
        ]
        # Each host's 4 models on 2 GPUs each, as its vramtop exporter reports them.
        gpus = [
            GpuLoad(
                index=i,
                uuid=f"GPU-{h:04x}{j:04x}-0000-4000-8000-{i:012x}",
                memory_used_bytes=(40 + i) * GIB,
                utilization=0.5,
                instance=f"h{h}-{j:03d}",
                processes=(GpuProcess(1000 + i, f"llm-{'abcd'[i // 2]}", (40 + i) * GIB),),
            )
            for h in host_sizes
            for j in range(h)
            for i in range(8)
        ]
        self._serve(SimulatedExporter("vllm", models, gpus=[]), kind="scale")
        self._serve(SimulatedExporter("vllm", fleet, gpus=[]), kind="scale")
        self._serve(SimulatedExporter("dcgm", gpus=gpus, hostname_label="node"), kind="scale")
        self._serve(SimulatedExporter("vramtop", gpus=gpus), kind="scale")
        self.fleet_models = len(models) + len(fleet)
        self.fleet_gpus = len(gpus)

    def wait_fleet(self, timeout: float = 300) -> None:
        p = self.prometheus
        sel = 'instance=~"m[0-9]+|h[0-9]+-[0-9]+"'
        p.wait_for(
            f"count(rate(vllm:e2e_request_latency_seconds_count{{{sel}}}[2m]) > 0)",
            lambda r: bool(r) and int(float(r[0]["value"][1])) >= self.fleet_models,
            timeout,
            f"two scrapes of {self.fleet_models} fleet models",
        )
        p.wait_for(
            f"count(DCGM_FI_DEV_FB_USED{{{sel}}})",
            lambda r: bool(r) and int(float(r[0]["value"][1])) >= self.fleet_gpus,
            timeout,
            f"{self.fleet_gpus} fleet GPUs",
        )

    def remove_fleet(self) -> None:
        """Stops scraping the fleet (Prometheus marks its series stale) and its exporters."""
        for exporter, sd_file in self._fleet:
            sd_file.unlink(missing_ok=True)
            exporter.stop()
            self.exporters.remove(exporter)
        self._fleet.clear()

    def stop(self) -> None:
        for exporter in self.exporters:
            exporter.stop()
        self.exporters.clear()
        self.prometheus.stop()
