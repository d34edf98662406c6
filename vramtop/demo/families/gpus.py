"""GPU exporters: DCGM (whole MiB, whole percent) and nvidia_gpu_exporter (nvidia-smi figures)."""

from __future__ import annotations

from vramtop.demo.families.out import Gpus, Models, Options, Out, at, whole_mib
from vramtop.demo.loads import MIB


def dcgm(out: Out, models: Models, gpus: Gpus, o: Options) -> None:
    for g in gpus:
        lab = at(
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


def nvidia_smi(out: Out, models: Models, gpus: Gpus, o: Options) -> None:
    for g in gpus:
        # nvidia_gpu_exporter labels every series with the uuid lowercased, "gpu-" stripped,
        # and converts nvidia-smi's whole MiB to bytes.
        uuid = g.gpu_uuid.lower().removeprefix("gpu-")
        lab = at({"uuid": uuid}, g.instance)
        info = {"uuid": uuid, "name": g.name, "driver_model_current": "N/A"}
        info |= {"driver_model_pending": "N/A", "vbios_version": "96.00.74.00.01"}
        out.gauge("nvidia_smi_gpu_info", at({**info, "driver_version": "550.54.15"}, g.instance), 1)
        out.gauge("nvidia_smi_memory_total_bytes", lab, whole_mib(g.memory_total_bytes))
        out.gauge("nvidia_smi_memory_used_bytes", lab, whole_mib(g.memory_used_bytes))
        out.gauge("nvidia_smi_memory_free_bytes", lab, whole_mib(g.memory_free_bytes))
        out.gauge("nvidia_smi_utilization_gpu_ratio", lab, round(g.utilization * 100) / 100)
        out.gauge("nvidia_smi_temperature_gpu", lab, g.temperature_c)
        out.gauge("nvidia_smi_power_draw_watts", lab, g.power_watts)
        out.gauge("nvidia_smi_enforced_power_limit_watts", lab, g.power_limit_watts)
        out.gauge("nvidia_smi_index", lab, g.index)
        for p in g.processes:
            app = at({"uuid": uuid, "pid": str(p.pid), "process_name": p.name}, g.instance)
            out.gauge("nvidia_smi_compute_app_used_memory_bytes", app, whole_mib(p.used_bytes))


def vramtop(out: Out, models: Models, gpus: Gpus, o: Options) -> None:
    """vramtop --serve-metrics: each GPU, and each model's VRAM on it (a process's name is the
    model it serves here)."""
    for g in gpus:
        lab = at({"gpu": str(g.index), "gpu_uuid": g.gpu_uuid, "name": g.name}, g.instance)
        out.gauge("vramtop_gpu_memory_used_bytes", lab, g.memory_used_bytes)
        out.gauge("vramtop_gpu_memory_total_bytes", lab, g.memory_total_bytes)
        out.gauge("vramtop_gpu_utilization_ratio", lab, g.utilization)
        out.gauge("vramtop_gpu_temperature_celsius", lab, g.temperature_c)
        out.gauge("vramtop_gpu_power_watts", lab, g.power_watts)
        per_model: dict[str, int] = {}
        for p in g.processes:
            per_model[p.name] = per_model.get(p.name, 0) + p.used_bytes
        for model, used in per_model.items():
            vram = at({"model": model, "gpu": str(g.index), "gpu_uuid": g.gpu_uuid}, g.instance)
            out.gauge("vramtop_model_vram_bytes", vram, used)
