"""NVML errors as reasons, and calls by name that remember what cannot work.

A function the driver (or the bindings) lacks is asked once per source, not once per refresh: its
fields then say "driver too old for <function>". A function one GPU does not support is asked
once per GPU (pass that GPU's ``memo``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from vramtop.clean import one_line

LOST = "GPU is lost (fell off the bus or needs a reset)"


class Lost(Exception):
    """The GPU fell off the bus during a call: the whole reading is a lost GPU."""


def explain(err: BaseException) -> str:
    """The one place that turns an NVML error into a reason a person reads."""
    name = type(err).__name__
    reasons = {
        "NVMLError_NotSupported": "not supported on this GPU",
        "NVMLError_NoPermission": "no permission to read it (NVML)",
        "NVMLError_GpuIsLost": LOST,
        "NVMLError_FunctionNotFound": "not supported by this driver version",
        "NVMLLibraryMismatchError": "not supported by this driver version",
        "NVMLError_LibraryNotFound": "no NVIDIA driver on this host (libnvidia-ml.so.1 not found)",
        "NVMLError_DriverNotLoaded": "the NVIDIA driver is not loaded",
        "NVMLError_LibRmVersionMismatch": (
            "the NVIDIA driver and libnvidia-ml versions differ (reboot or reload the driver)"
        ),
        "NVMLError_Uninitialized": "NVML is not initialised",
        "NVMLError_Timeout": "NVML timed out",
        "NVMLError_ResetRequired": "GPU needs a reset",
    }
    if name in reasons:
        return reasons[name]
    return f"NVML error: {one_line(err)}"


def too_old(function: str) -> str:
    return f"driver too old for {function}"


class Calls:
    """NVML functions called by name on ``backend`` (pynvml or the demo's SimulatedNvml)."""

    def __init__(self, backend: Any) -> None:
        self.nv = backend
        self.missing: set[str] = set()  # set.add is atomic: threads may share one Calls

    def get(
        self,
        reasons: dict[str, str],
        fields: Iterable[str],
        name: str,
        *args: Any,
        memo: dict[str, str] | None = None,
    ) -> Any:
        """``name(*args)``, or None with the reason set for each of ``fields``. Raises Lost when
        the GPU is lost."""
        reason = self.known(name, memo)
        if reason is None:
            fn = getattr(self.nv, name, None)
            if fn is None:
                reason = self.lacks(name)
            else:
                try:
                    return fn(*args)
                except self.nv.NVMLError as err:
                    reason = self.reason(name, err, memo)
        for f in fields:
            reasons[f] = reason
        return None

    def known(self, name: str, memo: dict[str, str] | None = None) -> str | None:
        """Why ``name`` is not worth calling (again), if it is not."""
        if name in self.missing:
            return too_old(name)
        return memo.get(name) if memo is not None else None

    def lacks(self, name: str) -> str:
        """The bindings or the driver have no ``name``: never asked again."""
        self.missing.add(name)
        return too_old(name)

    def reason(self, name: str, err: BaseException, memo: dict[str, str] | None = None) -> str:
        """The reason for ``err`` from ``name``, remembered where it will not change; raises
        Lost for a lost GPU."""
        nv = self.nv
        if isinstance(err, nv.NVMLError_GpuIsLost):
            raise Lost from None
        if isinstance(err, nv.NVMLError_FunctionNotFound):
            return self.lacks(name)
        reason = explain(err)
        if memo is not None and isinstance(err, nv.NVMLError_NotSupported):
            memo[name] = reason
        return reason
