"""An in-process stand-in for the ``pynvml`` module, serving the GPUs of a Scenario.

The demo mode hands a SimulatedNvml to the NVML source where it would use ``pynvml``. For the
subset of the API vramtop calls it has pynvml's names and signatures, returns the same Python
shapes (pynvml's own ctypes structures and process objects) and raises pynvml's own exceptions,
exactly where the fake C library (tests/fakenvml/fake_nvml.c) returns an error for the same
scenario; the contract test in tests/test_fake_nvml.py checks that call by call.

Unlike the C fake, the simulator never honours ``kill_on_read``: the demo never kills processes,
and nvmlDeviceGetPcieThroughput answers at once instead of sampling for 20 ms. Scripted events
count from nvmlInit or from the last change of ``scenario.events``; utilisation samples are
stamped with the time the scenario last changed.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pynvml

from vramtop.demo.scenario import ERROR_CODES, NO_INSTANCE, Event, Gpu, MigDevice, Scenario
from vramtop.records import record

_MAX_MIG_DEVICE_COUNT = 7
_U64_MAX = 0xFFFFFFFFFFFFFFFF
_EVENT_TYPES = {"sbe": 0x1, "dbe": 0x2, "xid": 0x8}
_MAX_EVENT_SETS = 8
_WAIT_STEP = 0.05  # seconds between looks for a due event while waiting

# NVML_FI_DEV_* id -> (the scenario's errors key, Gpu attribute, value type, NVLink only), as
# fake_nvml.c's field_defs.
_UINT, _ULL = pynvml.NVML_VALUE_TYPE_UNSIGNED_INT, pynvml.NVML_VALUE_TYPE_UNSIGNED_LONG_LONG
_FIELDS = {
    1: ("ecc_mode", "ecc_mode", _UINT, False),
    3: ("ecc_counts", "ecc_sbe_volatile", _ULL, False),
    4: ("ecc_counts", "ecc_dbe_volatile", _ULL, False),
    5: ("ecc_counts", "ecc_sbe_aggregate", _ULL, False),
    6: ("ecc_counts", "ecc_dbe_aggregate", _ULL, False),
    29: ("retired_pages", "retired_sbe", _ULL, False),
    30: ("retired_pages", "retired_dbe", _ULL, False),
    31: ("retired_pages", "retired_pending", _UINT, False),
    38: ("nvlink", "nvlink_crc_flit", _ULL, True),
    45: ("nvlink", "nvlink_crc_data", _ULL, True),
    52: ("nvlink", "nvlink_replay", _ULL, True),
    59: ("nvlink", "nvlink_recovery", _ULL, True),
    91: ("nvlink", "nvlink_links", _UINT, True),
    94: ("pcie_replay", "pcie_replay", _ULL, False),
    142: ("remapped_rows", "remapped_cor", _UINT, False),
    143: ("remapped_rows", "remapped_unc", _UINT, False),
    144: ("remapped_rows", "remap_pending", _UINT, False),
    145: ("remapped_rows", "remap_failure", _UINT, False),
}

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


@record
class SimulatedHandle:
    """An opaque device handle: GPU ``gpu``, or its MIG device ``mig`` when that is not None."""

    gpu: int
    mig: int | None = None


@record
class _Target:
    """What a handle resolves to in the scenario the call is answering from."""

    scenario: Scenario
    index: int
    gpu: Gpu
    mig_index: int | None
    mig: MigDevice | None


@dataclass(slots=True)
class _Timeline:
    """What the C fake keeps per loaded scenario: when events count from, which are done, which
    GPUs a "lost" event took off the bus, and the utilisation samples' time stamp."""

    events: tuple[Event, ...]
    start: float = field(default_factory=time.monotonic)
    done: set[int] = field(default_factory=set)
    lost: set[int] = field(default_factory=set)
    wall_us: int = field(default_factory=lambda: int(time.time() * 1_000_000))

    def due(self, e: Event) -> bool:
        return self.start + e.at_ms / 1000 <= time.monotonic()


@dataclass(slots=True)
class SimulatedEventSet:
    registered: dict[int, int] = field(default_factory=dict)  # GPU index -> event types
    used: bool = True


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
        self._lock = threading.RLock()
        self._scenario = scenario
        self._timeline = _Timeline(scenario.events)
        self._init_refcount = 0
        self._sets: list[SimulatedEventSet] = []

    @property
    def scenario(self) -> Scenario:
        return self._scenario

    @scenario.setter
    def scenario(self, new: Scenario) -> None:
        with self._lock:
            old, self._scenario = self._scenario, new
            if new.events != self._timeline.events:
                self._timeline = _Timeline(new.events)
            elif new != old:
                self._timeline.wall_us = int(time.time() * 1_000_000)

    def __getattr__(self, name: str) -> Any:
        # Constants and exception classes (NVML_*, NVMLError_*) come from pynvml itself; its
        # functions must not, as they would call the real library.
        if name.startswith("NVML"):
            return getattr(pynvml, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    # -- plumbing: the checks mirror fake_nvml.c's enter() / check_device(), in its order ----

    def _enter(self, symbol: str | None = None) -> Scenario:
        if not self._init_refcount:
            raise _fail(pynvml.NVML_ERROR_UNINITIALIZED)
        with self._lock:
            scenario, tl = self._scenario, self._timeline
            for i, e in enumerate(tl.events):  # a due "lost" event takes its GPU off the bus
                if e.type == "lost" and i not in tl.done and tl.due(e):
                    tl.lost.add(e.gpu)
                    tl.done.add(i)
        if symbol is not None and symbol in scenario.missing_functions:
            raise _fail(pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)  # an older driver
        return scenario

    def _lost(self, target: _Target) -> bool:
        return target.gpu.lost or target.index in self._timeline.lost

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
        self,
        handle: object,
        field: str | None,
        scenario: Scenario | None = None,
        symbol: str | None = None,
    ) -> _Target:
        """Initialised, valid handle, GPU not lost, meaningful on a MIG handle, no forced error."""
        target = self._resolve(self._enter(symbol) if scenario is None else scenario, handle)
        if self._lost(target):
            raise _fail(pynvml.NVML_ERROR_GPU_IS_LOST)
        if target.mig is not None and field not in _MIG_FIELDS:
            raise _fail(pynvml.NVML_ERROR_NOT_SUPPORTED)
        if field is not None and field in target.gpu.errors:
            raise _fail(ERROR_CODES[target.gpu.errors[field]])
        return target

    def _any_handle(self, handle: object, symbol: str | None = None) -> _Target:
        target = self._resolve(self._enter(symbol), handle)
        if self._lost(target):
            raise _fail(pynvml.NVML_ERROR_GPU_IS_LOST)
        return target

    # -- library ---------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        self.nvmlInitWithFlags(0)

    def nvmlInitWithFlags(self, flags: int) -> None:
        del flags
        with self._lock:
            self._init_refcount += 1
            self._timeline = _Timeline(self._scenario.events)  # as the fake loads its file

    def nvmlShutdown(self) -> None:
        with self._lock:
            self._enter("nvmlShutdown")
            self._init_refcount -= 1

    def nvmlErrorString(self, result: int) -> str:
        return _ERROR_TEXT.get(result, "Unknown Error")

    def nvmlSystemGetDriverVersion(self) -> str:
        return self._enter("nvmlSystemGetDriverVersion").driver_version

    def nvmlSystemGetNVMLVersion(self) -> str:
        return self._enter("nvmlSystemGetNVMLVersion").nvml_version

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        return self._enter("nvmlSystemGetCudaDriverVersion").cuda_driver_version

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return self._enter("nvmlSystemGetCudaDriverVersion_v2").cuda_driver_version

    # -- devices ---------------------------------------------------------------------------

    def nvmlDeviceGetCount(self) -> int:
        return len(self._enter("nvmlDeviceGetCount_v2").gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimulatedHandle:
        if not 0 <= index < len(self._enter("nvmlDeviceGetHandleByIndex_v2").gpus):
            raise _fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return SimulatedHandle(index)

    def nvmlDeviceGetHandleByUUID(self, uuid: str | bytes) -> SimulatedHandle:
        scenario = self._enter("nvmlDeviceGetHandleByUUID")
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
        return self._device(handle, None, symbol="nvmlDeviceGetIndex").index

    def nvmlDeviceGetName(self, handle: object) -> str:
        target = self._device(handle, "name", symbol="nvmlDeviceGetName")
        return target.gpu.name + (" MIG" if target.mig is not None else "")

    def nvmlDeviceGetUUID(self, handle: object) -> str:
        t = self._device(handle, "uuid", symbol="nvmlDeviceGetUUID")
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
            target = self._device(handle, "memory", symbol="nvmlDeviceGetMemoryInfo")
            total, reserved, free, used = self._memory(target)
            # v1 counts the driver's reservation as used.
            return pynvml.c_nvmlMemory_t(total, free, min(used + reserved, _U64_MAX))
        target = self._device(handle, "memory_v2", symbol="nvmlDeviceGetMemoryInfo_v2")
        if version != pynvml.nvmlMemory_v2:
            raise _fail(pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
        total, reserved, free, used = self._memory(target)
        return pynvml.c_nvmlMemory_v2_t(version, total, reserved, free, used)

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> Any:
        gpu = self._device(handle, "utilization", symbol="nvmlDeviceGetUtilizationRates").gpu
        return pynvml.c_nvmlUtilization_t(gpu.utilization_gpu, gpu.utilization_memory)

    def nvmlDeviceGetTemperature(self, handle: object, sensor: int) -> int:
        gpu = self._device(handle, "temperature", symbol="nvmlDeviceGetTemperature").gpu
        if sensor != pynvml.NVML_TEMPERATURE_GPU:
            raise _fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return gpu.temperature

    def nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        return self._device(
            handle, "power_usage", symbol="nvmlDeviceGetPowerUsage"
        ).gpu.power_usage_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: object) -> int:
        target = self._device(handle, "power_limit", symbol="nvmlDeviceGetEnforcedPowerLimit")
        return target.gpu.power_limit_mw

    # -- MIG -------------------------------------------------------------------------------

    def nvmlDeviceGetMigMode(self, handle: object) -> list[int]:
        gpu = self._device(handle, "mig_mode", symbol="nvmlDeviceGetMigMode").gpu
        return [gpu.mig_current, gpu.mig_pending]

    def nvmlDeviceGetMaxMigDeviceCount(self, handle: object) -> int:
        target = self._device(handle, None, symbol="nvmlDeviceGetMaxMigDeviceCount")
        return _MAX_MIG_DEVICE_COUNT if target.gpu.mig_current == 1 else 0

    def nvmlDeviceGetMigDeviceHandleByIndex(self, handle: object, index: int) -> SimulatedHandle:
        target = self._device(handle, None, symbol="nvmlDeviceGetMigDeviceHandleByIndex")
        if target.gpu.mig_current != 1 or not 0 <= index < len(target.gpu.mig_devices):
            raise _fail(pynvml.NVML_ERROR_NOT_FOUND)
        return SimulatedHandle(target.index, index)

    def nvmlDeviceIsMigDeviceHandle(self, handle: object) -> ctypes.c_uint:
        # pynvml returns the c_uint itself here, not its value.
        target = self._any_handle(handle, "nvmlDeviceIsMigDeviceHandle")
        return ctypes.c_uint(target.mig is not None)

    def nvmlDeviceGetGpuInstanceId(self, handle: object) -> int:
        mig = self._any_handle(handle, "nvmlDeviceGetGpuInstanceId").mig
        if mig is None:
            raise _fail(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return mig.gpu_instance_id

    def nvmlDeviceGetComputeInstanceId(self, handle: object) -> int:
        mig = self._any_handle(handle, "nvmlDeviceGetComputeInstanceId").mig
        if mig is None:
            raise _fail(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return mig.compute_instance_id

    # -- processes -------------------------------------------------------------------------

    def _processes(self, handle: object, kind: str, v3: bool) -> list[Any]:
        stem = "Compute" if kind == "compute" else "Graphics"
        scenario = self._enter(f"nvmlDeviceGet{stem}RunningProcesses_{'v3' if v3 else 'v2'}")
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

    # -- health ----------------------------------------------------------------------------

    def _health(self, handle: object, field: str, symbol: str) -> Gpu:
        return self._device(handle, field, symbol=symbol).gpu

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: object) -> int:
        name = "nvmlDeviceGetCurrentClocksEventReasons"
        return self._health(handle, "clocks_event_reasons", name).clocks_event_reasons

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: object) -> int:
        name = "nvmlDeviceGetCurrentClocksThrottleReasons"
        return self._health(handle, "clocks_event_reasons", name).clocks_event_reasons

    def nvmlDeviceGetPerformanceState(self, handle: object) -> int:
        name = "nvmlDeviceGetPerformanceState"
        return self._health(handle, "performance_state", name).performance_state

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle: object) -> int:
        return self._health(handle, "pcie_link", "nvmlDeviceGetCurrPcieLinkGeneration").pcie_gen

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle: object) -> int:
        name = "nvmlDeviceGetMaxPcieLinkGeneration"
        return self._health(handle, "pcie_link", name).pcie_gen_max

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle: object) -> int:
        return self._health(handle, "pcie_link", "nvmlDeviceGetCurrPcieLinkWidth").pcie_width

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle: object) -> int:
        name = "nvmlDeviceGetMaxPcieLinkWidth"
        return self._health(handle, "pcie_link", name).pcie_width_max

    def nvmlDeviceGetPcieThroughput(self, handle: object, counter: int) -> int:
        gpu = self._health(handle, "pcie_throughput", "nvmlDeviceGetPcieThroughput")
        if counter not in (pynvml.NVML_PCIE_UTIL_TX_BYTES, pynvml.NVML_PCIE_UTIL_RX_BYTES):
            raise _fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return gpu.pcie_rx_kbps if counter == pynvml.NVML_PCIE_UTIL_RX_BYTES else gpu.pcie_tx_kbps

    def nvmlDeviceGetFieldValues(self, handle: object, field_ids: list[Any]) -> Any:
        gpu = self._health(handle, "field_values", "nvmlDeviceGetFieldValues")
        values = (pynvml.c_nvmlFieldValue_t * len(field_ids))()
        stamp = self._timeline.wall_us
        for v, fid in zip(values, field_ids, strict=True):
            try:
                v.fieldId, v.scopeId = fid
            except TypeError:
                v.fieldId = fid
            v.timestamp, v.latencyUsec = stamp, 0
            known = _FIELDS.get(v.fieldId)
            if known is None:
                v.valueType, v.nvmlReturn = _ULL, pynvml.NVML_ERROR_NOT_SUPPORTED
                continue
            errors_key, attr, v.valueType, nvlink = known
            code = ERROR_CODES.get(gpu.errors.get(errors_key, ""), pynvml.NVML_SUCCESS)
            if nvlink and gpu.nvlink_links == 0:
                code = pynvml.NVML_ERROR_NOT_SUPPORTED
            v.nvmlReturn = code
            if code == pynvml.NVML_SUCCESS:
                if v.valueType == _UINT:
                    v.value.uiVal = getattr(gpu, attr)
                else:
                    v.value.ullVal = getattr(gpu, attr)
        return values

    def nvmlDeviceGetProcessUtilization(self, handle: object, last_seen: int) -> list[Any]:
        name = "nvmlDeviceGetProcessUtilization"
        gpu = self._health(handle, "process_utilization", name)
        stamp = self._timeline.wall_us
        samples = [
            pynvml.c_nvmlProcessUtilizationSample_t(p.pid, stamp, p.sm_util, p.mem_util, 0, 0)
            for p in gpu.processes
            if p.sm_util >= 0 and stamp > last_seen
        ]
        if not samples:
            raise _fail(pynvml.NVML_ERROR_NOT_FOUND)
        return samples

    # -- events ----------------------------------------------------------------------------

    def nvmlEventSetCreate(self) -> SimulatedEventSet:
        self._enter("nvmlEventSetCreate")
        with self._lock:
            self._sets = [s for s in self._sets if s.used]
            if len(self._sets) >= _MAX_EVENT_SETS:
                raise _fail(pynvml.NVML_ERROR_MEMORY)
            event_set = SimulatedEventSet()
            self._sets.append(event_set)
            return event_set

    def nvmlEventSetFree(self, event_set: object) -> None:
        self._enter("nvmlEventSetFree")
        if not isinstance(event_set, SimulatedEventSet) or not event_set.used:
            raise _fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        event_set.used = False

    def nvmlDeviceGetSupportedEventTypes(self, handle: object) -> int:
        return self._health(handle, "events", "nvmlDeviceGetSupportedEventTypes").supported_events

    def nvmlDeviceRegisterEvents(self, handle: object, types: int, event_set: object) -> None:
        target = self._device(handle, "events", symbol="nvmlDeviceRegisterEvents")
        if not isinstance(event_set, SimulatedEventSet) or not event_set.used:
            raise _fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        if types & ~target.gpu.supported_events:
            raise _fail(pynvml.NVML_ERROR_NOT_SUPPORTED)
        event_set.registered[target.index] = event_set.registered.get(target.index, 0) | types

    def nvmlEventSetWait_v2(self, event_set: object, timeout_ms: int) -> Any:
        deadline = time.monotonic() + timeout_ms / 1000
        scenario = self._enter("nvmlEventSetWait_v2")
        if not isinstance(event_set, SimulatedEventSet) or not event_set.used:
            raise _fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)
        while True:
            found = self._next_event(scenario, event_set)
            if found is not None:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise _fail(pynvml.NVML_ERROR_TIMEOUT)
            time.sleep(min(left, _WAIT_STEP))
            scenario = self._enter()
            if not event_set.used:
                raise _fail(pynvml.NVML_ERROR_INVALID_ARGUMENT)

    def nvmlEventSetWait(self, event_set: object, timeout_ms: int) -> Any:
        return self.nvmlEventSetWait_v2(event_set, timeout_ms)

    def _next_event(self, scenario: Scenario, event_set: SimulatedEventSet) -> Any:
        """The first due event the set registered for; GPU_IS_LOST when one of its GPUs is lost;
        None when there is nothing yet (fake_nvml.c's next_event)."""
        with self._lock:
            tl = self._timeline
            for i, e in enumerate(tl.events):
                kind = _EVENT_TYPES.get(e.type, 0)
                if i in tl.done or not kind or not event_set.registered.get(e.gpu, 0) & kind:
                    continue
                if not tl.due(e):
                    continue
                tl.done.add(i)
                return SimpleNamespace(
                    device=SimulatedHandle(e.gpu),
                    eventType=kind,
                    eventData=e.data if e.type == "xid" else 0,
                    gpuInstanceId=NO_INSTANCE,
                    computeInstanceId=NO_INSTANCE,
                )
            for index, types in event_set.registered.items():
                gone = index < len(scenario.gpus) and (
                    scenario.gpus[index].lost or index in tl.lost
                )
                if types and gone:
                    raise _fail(pynvml.NVML_ERROR_GPU_IS_LOST)
        return None


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
