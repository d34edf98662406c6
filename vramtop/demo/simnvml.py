"""An in-process stand-in for the ``pynvml`` module, serving the GPUs of a Scenario.

The demo mode hands a SimulatedNvml to the NVML source where it would use ``pynvml``. For the
subset of the API vramtop calls it has pynvml's names and signatures, returns the same Python
shapes (pynvml's own ctypes structures and process objects) and raises pynvml's own exceptions,
exactly where the fake C library (tests/fakenvml/fake_nvml.c) returns an error for the same
scenario; the contract test in tests/test_fake_nvml.py checks that call by call.

Unlike the C fake, the simulator never honours ``kill_on_read``: the demo never kills processes.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pynvml

from vramtop.demo.scenario import ERROR_CODES, Gpu, MigDevice, Scenario

_MAX_MIG_DEVICE_COUNT = 7
_U64_MAX = 0xFFFFFFFFFFFFFFFF

# NVML's messages for its return codes, as the fake C library's nvmlErrorString gives them.
_ERROR_TEXT = {
    0: "Success",
    1: "Uninitialized",
    2: "Invalid Argument",
    3: "Not Supported",
    4: "Insufficient Permissions",
    5: "Already Initialized",
    6: "Not Found",
    7: "Insufficient Size",
    8: "Insufficient External Power",
    9: "Driver Not Loaded",
    10: "Timeout",
    11: "Interrupt Request Issue",
    12: "NVML Shared Library Not Found",
    13: "Function Not Found",
    14: "Corrupted infoROM",
    15: "GPU is lost",
    16: "GPU requires restart",
    17: "The operating system has blocked the request.",
    18: "RM has detected an NVML/RM version mismatch.",
    19: "In use by another client",
    20: "Insufficient Memory",
    21: "No data",
    22: "The requested vgpu operation is not available",
    23: "Insufficient resources",
    24: "Frequency not supported",
    25: "Argument version mismatch",
    26: "Deprecated",
    27: "Not ready",
    28: "GPU not found",
    29: "Invalid state",
    30: "Reset type not supported",
    999: "Unknown Error",
}

# Calls a MIG handle answers; everything else on a MIG handle is NOT_SUPPORTED.
_MIG_FIELDS = frozenset(
    ("name", "uuid", "memory", "memory_v2", "compute_processes", "graphics_processes")
)


@dataclass(frozen=True, slots=True)
class SimulatedHandle:
    """An opaque device handle: GPU ``gpu``, or its MIG device ``mig`` when that is not None."""

    gpu: int
    mig: int | None = None


@dataclass(frozen=True, slots=True)
class _Target:
    """What a handle resolves to in the scenario the call is answering from."""

    scenario: Scenario
    index: int
    gpu: Gpu
    mig_index: int | None
    mig: MigDevice | None


def _fail(code: int) -> pynvml.NVMLError:
    return pynvml.NVMLError(code)


def _process_object(pid: int, used: int | None, gi: int, ci: int) -> Any:
    # Built as pynvml builds it, from its own structure, so the object is indistinguishable.
    struct = pynvml.c_nvmlProcessInfo_v2_t(pid, _U64_MAX if used is None else used, gi, ci)
    obj = pynvml.nvmlStructToFriendlyObject(struct)
    if obj.usedGpuMemory == pynvml.NVML_VALUE_NOT_AVAILABLE_ulonglong.value:
        obj.usedGpuMemory = None
    return obj


class SimulatedNvml:
    """Answers like the ``pynvml`` module over ``self.scenario``, which may be swapped any time.

    Each call reads ``self.scenario`` once, so swapping it from another thread is safe.
    """

    NVMLError = pynvml.NVMLError
    NVMLLibraryMismatchError = pynvml.NVMLLibraryMismatchError
    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU
    nvmlMemory_v2 = pynvml.nvmlMemory_v2

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self._lock = threading.Lock()
        self._init_refcount = 0

    def __getattr__(self, name: str) -> Any:
        # Constants and exception classes (NVML_*, NVMLError_*) come from pynvml itself; its
        # functions must not, as they would call the real library.
        if name.startswith("NVML"):
            return getattr(pynvml, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    # -- plumbing: the checks mirror fake_nvml.c's enter() / check_device(), in its order ----

    def _enter(self) -> Scenario:
        if not self._init_refcount:
            raise _fail(pynvml.NVML_ERROR_UNINITIALIZED)
        return self.scenario

    @staticmethod
    def _resolve(scenario: Scenario, handle: object) -> _Target:
        if not isinstance(handle, SimulatedHandle) or not 0 <= handle.gpu < len(scenario.gpus):
            raise _fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        gpu = scenario.gpus[handle.gpu]
        if handle.mig is None:
            return _Target(scenario, handle.gpu, gpu, None, None)
        if gpu.mig_current != 1 or not 0 <= handle.mig < len(gpu.mig_devices):
            raise _fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return _Target(scenario, handle.gpu, gpu, handle.mig, gpu.mig_devices[handle.mig])

    def _device(
        self, handle: object, field: str | None, scenario: Scenario | None = None
    ) -> _Target:
        """Initialised, valid handle, GPU not lost, meaningful on a MIG handle, no forced error."""
        target = self._resolve(self._enter() if scenario is None else scenario, handle)
        if target.gpu.lost:
            raise _fail(pynvml.NVML_ERROR_GPU_IS_LOST)
        if target.mig is not None and field not in _MIG_FIELDS:
            raise _fail(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if field is not None and field in target.gpu.errors:
            raise _fail(ERROR_CODES[target.gpu.errors[field]])
        return target

    def _any_handle(self, handle: object) -> _Target:
        target = self._resolve(self._enter(), handle)
        if target.gpu.lost:
            raise _fail(pynvml.NVML_ERROR_GPU_IS_LOST)
        return target

    # -- library ---------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self.nvmlInitWithFlags(0)

    def nvmlInitWithFlags(self, flags: int) -> None:
        del flags
        with self._lock:
            self._init_refcount += 1

    def nvmlShutdown(self) -> None:
        with self._lock:
            self._enter()
            self._init_refcount -= 1

    def nvmlErrorString(self, result: int) -> str:
        return _ERROR_TEXT.get(result, "Unknown Error")

    def nvmlSystemGetDriverVersion(self) -> str:
        return self._enter().driver_version

    def nvmlSystemGetNVMLVersion(self) -> str:
        return self._enter().nvml_version

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self._enter().cuda_driver_version

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return self._enter().cuda_driver_version

    # -- devices ---------------------------------------------------------------------------

    def nvmlDeviceGetCount(self) -> int:
        return len(self._enter().gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimulatedHandle:
        if not 0 <= index < len(self._enter().gpus):
            raise _fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return SimulatedHandle(index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> SimulatedHandle:
        scenario = self._enter()
        if isinstance(uuid, bytes):
            uuid = uuid.decode()
        for i, gpu in enumerate(scenario.gpus):
            if scenario.gpu_uuid(i) == uuid:
                return SimulatedHandle(i)
            if gpu.mig_current == 1:
                for j in range(len(gpu.mig_devices)):
                    if scenario.mig_uuid(i, j) == uuid:
                        return SimulatedHandle(i, j)
        raise _fail(pynvml.NVML_ERROR_NOT_FOUND)

    def nvmlDeviceGetIndex(self, handle: object) -> int:
        return self._device(handle, None).index

    def nvmlDeviceGetName(self, handle: object) -> str:
        target = self._device(handle, "name")
        return target.gpu.name + (" MIG" if target.mig is not None else "")

    def nvmlDeviceGetUUID(self, handle: object) -> str:
        t = self._device(handle, "uuid")
        if t.mig_index is None:
            return t.scenario.gpu_uuid(t.index)
        return t.scenario.mig_uuid(t.index, t.mig_index)

    @staticmethod
    def _memory(target: _Target) -> tuple[int, int, int, int]:
        """(total, reserved, free, used) in the v2 sense."""
        if target.mig is not None:
            total, reserved, used = target.mig.memory_total, 0, target.mig.memory_used
        else:
            gpu = target.gpu
            total, reserved, used = gpu.memory_total, gpu.memory_reserved, gpu.memory_used
        return total, reserved, max(total - used - reserved, 0), used

    def nvmlDeviceGetMemoryInfo(self, handle: object, version: int | None = None) -> Any:
        if not version:
            total, reserved, free, used = self._memory(self._device(handle, "memory"))
            # v1 counts the driver's reservation as used.
            return pynvml.c_nvmlMemory_t(total, free, min(used + reserved, _U64_MAX))
        target = self._device(handle, "memory_v2")
        if version != pynvml.nvmlMemory_v2:
            raise _fail(pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
        total, reserved, free, used = self._memory(target)
        return pynvml.c_nvmlMemory_v2_t(version, total, reserved, free, used)

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> Any:
        gpu = self._device(handle, "utilization").gpu
        return pynvml.c_nvmlUtilization_t(gpu.utilization_gpu, gpu.utilization_memory)

    def nvmlDeviceGetTemperature(self, handle: object, sensor: int) -> int:
        gpu = self._device(handle, "temperature").gpu
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise _fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return gpu.temperature

    def nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        return self._device(handle, "power_usage").gpu.power_usage_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: object) -> int:
        return self._device(handle, "power_limit").gpu.power_limit_mw

    # -- MIG -------------------------------------------------------------------------------

    def nvmlDeviceGetMigMode(self, handle: object) -> list[int]:
        gpu = self._device(handle, "mig_mode").gpu
        return [gpu.mig_current, gpu.mig_pending]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: object) -> int:
        return _MAX_MIG_DEVICE_COUNT if self._device(handle, None).gpu.mig_current == 1 else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: object, index: int) -> SimulatedHandle:
        target = self._device(handle, None)
        if target.gpu.mig_current != 1 or not 0 <= index < len(target.gpu.mig_devices):
            raise _fail(pynvml.NVML_ERROR_NOT_FOUND)
        return SimulatedHandle(target.index, index)

    def nvmlDeviceIsMigDeviceHandle(self, handle: object) -> ctypes.c_uint:
        # pynvml returns the c_uint itself here, not its value.
        return ctypes.c_uint(self._any_handle(handle).mig is not None)

    def nvmlDeviceGetGpuInstanceId(self, handle: object) -> int:
        mig = self._any_handle(handle).mig
        if mig is None:
            raise _fail(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return mig.gpu_instance_id

    def nvmlDeviceGetComputeInstanceId(self, handle: object) -> int:
        mig = self._any_handle(handle).mig
        if mig is None:
            raise _fail(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return mig.compute_instance_id

    # -- processes -------------------------------------------------------------------------

    def _processes(self, handle: object, kind: str, v3: bool) -> list[Any]:
        scenario = self._enter()
        if v3 and scenario.process_api == 2:  # an older driver without the _v3 queries
            raise _fail(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        target = self._device(handle, f"{kind}_processes", scenario)
        return [
            _process_object(p.pid, p.used_memory, p.gpu_instance_id, p.compute_instance_id)
            for p in target.gpu.processes
            if p.type == kind
            and (target.mig is None or p.gpu_instance_id == target.mig.gpu_instance_id)
        ]

    def nvmlDeviceGetComputeRunningProcesses_v3(self, handle: object) -> list[Any]:
        return self._processes(handle, "compute", v3=True)

    def nvmlDeviceGetComputeRunningProcesses_v2(self, handle: object) -> list[Any]:
        return self._processes(handle, "compute", v3=False)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: object) -> list[Any]:
        return _unversioned(self.nvmlDeviceGetComputeRunningProcesses_v3, handle)

    def nvmlDeviceGetGraphicsRunningProcesses_v3(self, handle: object) -> list[Any]:
        return self._processes(handle, "graphics", v3=True)

    def nvmlDeviceGetGraphicsRunningProcesses_v2(self, handle: object) -> list[Any]:
        return self._processes(handle, "graphics", v3=False)

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: object) -> list[Any]:
        return _unversioned(self.nvmlDeviceGetGraphicsRunningProcesses_v3, handle)


def _unversioned(call: Callable[[object], list[Any]], handle: object) -> list[Any]:
    """pynvml's unversioned process queries turn FUNCTION_NOT_FOUND into this exception."""
    try:
        return call(handle)
    except pynvml.NVMLError_FunctionNotFound:
        raise pynvml.NVMLLibraryMismatchError(
            "Unversioned function called and the pyNVML version does not match the NVML lib "
            "version. Either use matching pyNVML and NVML lib versions or use a versioned "
            f"function such as {call.__name__.removesuffix('_v3')}_v2"
        ) from None
