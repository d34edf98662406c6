"""One module per server family, each writing that family's real metric names."""

from __future__ import annotations

from collections.abc import Callable

from vramtop.demo.families import facesocial, gpus, llamacpp, sglang, tgi, triton, vllm
from vramtop.demo.families.out import Gpus, Models, Options, Out

BUILDERS: dict[str, Callable[[Out, Models, Gpus, Options], None]] = {
    "facesocial": facesocial.facesocial,
    "vllm": vllm.vllm,
    "triton": triton.triton,
    "tgi": tgi.tgi,
    "sglang": sglang.sglang,
    "llamacpp": llamacpp.llamacpp,
    "dcgm": gpus.dcgm,
    "nvidia_gpu_exporter": gpus.nvidia_smi,
    "vramtop": gpus.vramtop,
}
PROFILES = tuple(BUILDERS)
