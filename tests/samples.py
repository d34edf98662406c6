"""Hand-built Frames for export tests: every field, hostile text, unavailable values."""

from vramtop.collector import models_of
from vramtop.model import (
    Frame,
    GpuReading,
    HostReading,
    MigReading,
    ProcessReading,
    SourceStatus,
    freeze,
)

HOSTILE = "[bold red]x[/] \x1b[2J\x1b]0;pwned\x07 | `tick` <b>*em*</b> \x9b31m"


def frame() -> Frame:
    procs = (
        ProcessReading(
            101,
            0,
            40 * 2**30,
            "compute",
            "alice",
            "python3",
            "vllm serve org/llama --served-model-name llama",
            "llama",
            "cmdline",
        ),
        ProcessReading(
            102,
            0,
            None,
            "compute",
            None,
            None,
            None,
            None,
            None,
            detail="not visible here: it exited, or it runs in another PID namespace",
        ),
        ProcessReading(103, 1, 2**30, "graphics", "bob", "evil", HOSTILE, HOSTILE, "rule"),
    )
    gpus = (
        GpuReading(
            0,
            "GPU-aaaa",
            "NVIDIA H100 80GB HBM3",
            "ok",
            79 * 2**30,
            80 * 2**30,
            2**29,
            97.0,
            40.0,
            None,
            350.5,
            700.0,
            False,
            (),
            procs[:2],
            freeze({"temperature_c": "not supported on this GPU"}),
        ),
        GpuReading(
            1,
            "GPU-bbbb",
            "NVIDIA A100-SXM4-40GB",
            "ok",
            2**30,
            40 * 2**30,
            0,
            1.0,
            0.0,
            40.0,
            60.0,
            400.0,
            True,
            (MigReading("MIG-cccc", 1, 2**30, 10 * 2**30),),
            procs[2:],
        ),
        GpuReading(
            2,
            "GPU-dddd",
            "NVIDIA L4",
            "lost",
            unavailable=freeze({"state": "GPU is lost (fell off the bus or needs a reset)"}),
        ),
    )
    return Frame(
        time=1795000000.0,
        host=HostReading(
            "gpu-box-01",
            12.5,
            64,
            100 * 2**30,
            512 * 2**30,
            (1.0, 2.0, 3.0),
            "/",
            10 * 2**30,
            100 * 2**30,
        ),
        gpus=gpus,
        models=models_of(gpus),
        sources=(
            SourceStatus("host", "ok"),
            SourceStatus("nvml", "stale", "no answer within 5 s", since=1794999990.0),
        ),
        driver_version="550.54.15",
    )


def empty_frame() -> Frame:
    return Frame(
        time=1795000000.0,
        host=HostReading("laptop"),
        sources=(
            SourceStatus("host", "ok"),
            SourceStatus(
                "nvml", "error", "no NVIDIA driver on this host (libnvidia-ml.so.1 not found)"
            ),
        ),
    )
