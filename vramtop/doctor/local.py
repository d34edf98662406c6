"""The local checks: is NVML (the driver) reachable, and can this process see the processes
that hold GPU memory (a container or another PID namespace hides them from psutil)."""

from __future__ import annotations

from vramtop.doctor import FAIL, PASS, WARN, Report


def check_nvml(report: Report, required: bool) -> None:
    """``required``: no remote source was named, so a missing driver leaves nothing to show."""
    from vramtop.sources.base import SourceError
    from vramtop.sources.nvml import NvmlSource

    source = NvmlSource()
    try:
        reading = source.poll()
    except SourceError as err:
        # The same explanations as the live view (vramtop/sources/nvml.py explain()).
        report.add(FAIL if required else WARN, "nvml", f"{err.reason}.")
        return
    except (ImportError, OSError) as err:
        report.add(FAIL if required else WARN, "nvml", f"NVML cannot be loaded ({err}).")
        return
    try:
        driver = reading.driver_version or "unknown"
        report.add(PASS, "nvml", f"driver {driver}, {len(reading.gpus)} GPU(s) reachable.")
        _check_pids(report, [p.pid for g in reading.gpus for p in g.processes])
    finally:
        source.close()


def _check_pids(report: Report, pids: list[int]) -> None:
    import psutil

    if not pids:
        report.add(PASS, "pid namespace", "no process holds GPU memory right now.")
        return
    hidden = sorted({p for p in pids if not psutil.pid_exists(p)})
    if not hidden:
        report.add(PASS, "pid namespace", f"all {len(set(pids))} GPU process(es) are visible.")
        return
    shown = ", ".join(map(str, hidden[:5])) + (" …" if len(hidden) > 5 else "")
    report.add(
        WARN,
        "pid namespace",
        f"{len(hidden)} GPU process(es) NVML reports are not visible here (pid {shown}): "
        "vramtop runs in another PID namespace (a container without --pid=host), so their "
        "names, users and models stay unknown.",
    )
