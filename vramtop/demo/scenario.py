"""A scenario: the GPUs, processes and failures a simulated NVML host presents.

One scenario drives both the fake ``libnvidia-ml.so.1`` used by the tests (which reads the TOML
file named by ``$FAKE_NVML_SCENARIO``, see tests/fakenvml/fake_nvml.c) and the in-process
:class:`vramtop.demo.simnvml.SimulatedNvml` behind the demo mode. Defaults, limits and validation
here match the C parser's; change both together.

The file format is a small subset of TOML::

    driver_version = "550.54.15"
    process_api = 3                  # 2: the *_v3 process queries are missing (older driver)

    [[gpu]]
    name = "NVIDIA H100 80GB HBM3"
    memory_total = 85899345920
    memory_used = 1073741824         # excludes memory_reserved
    errors = "temperature:NOT_SUPPORTED,power_usage:NO_PERMISSION"

    [[gpu.process]]                  # belongs to the [[gpu]] above
    pid = 12345
    used_memory = 1073741824         # omit or -1: not available

    [[gpu.mig]]                      # a MIG device of the [[gpu]] above
    gpu_instance_id = 1

    [[event]]                        # at_ms after the scenario is loaded: nvmlEventSetWait
    at_ms = 500                      # delivers it (xid, sbe, dbe), or the GPU falls off the
    gpu = 0                          # bus (lost)
    type = "xid"
    data = 79

Health (clock event reasons, ECC, remapped rows, PCIe, NVLink) are [[gpu]] keys; a process's
``sm_util`` (-1: no sample) and ``mem_util`` come back from nvmlDeviceGetProcessUtilization;
``missing_functions = "nvmlDeviceGetFieldValues"`` plays an older driver without them.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from vramtop.records import record

MAX_GPUS = 64
MAX_PROCESSES_PER_GPU = 256
MAX_MIG_DEVICES_PER_GPU = 7
MAX_EVENTS = 64
MAX_NVLINKS = 18
PSTATE_UNKNOWN = 32

# Byte lengths that always fit pynvml's buffers; a GPU name leaves room for the " MIG" suffix
# of its MIG handles' names.
MAX_NAME_BYTES = 91
MAX_UUID_BYTES = 95
MAX_VERSION_BYTES = 79

U32_MAX = 0xFFFFFFFF
U64_MAX = 0xFFFFFFFFFFFFFFFF
NO_INSTANCE = U32_MAX  # NVML's gpu/compute instance id of a process outside any MIG instance

# Calls a scenario can force to fail, by the ``errors`` field name.
ERROR_FIELDS = (
    "name",
    "uuid",
    "memory",
    "memory_v2",
    "utilization",
    "temperature",
    "power_usage",
    "power_limit",
    "mig_mode",
    "compute_processes",
    "graphics_processes",
    "clocks_event_reasons",
    "performance_state",
    "ecc_mode",
    "ecc_counts",
    "retired_pages",
    "remapped_rows",
    "pcie_replay",
    "pcie_link",
    "pcie_throughput",
    "nvlink",
    "process_utilization",
    "field_values",
    "events",
)

# The functions the fake library exports (and counts), as fake_nvml.c names them: what
# ``missing_functions`` may list.
FUNCTIONS = (
    "nvmlInit_v2",
    "nvmlInitWithFlags",
    "nvmlShutdown",
    "nvmlErrorString",
    "nvmlSystemGetDriverVersion",
    "nvmlSystemGetNVMLVersion",
    "nvmlSystemGetCudaDriverVersion",
    "nvmlSystemGetCudaDriverVersion_v2",
    "nvmlDeviceGetCount_v2",
    "nvmlDeviceGetHandleByIndex_v2",
    "nvmlDeviceGetHandleByUUID",
    "nvmlDeviceGetIndex",
    "nvmlDeviceGetName",
    "nvmlDeviceGetUUID",
    "nvmlDeviceGetMemoryInfo",
    "nvmlDeviceGetMemoryInfo_v2",
    "nvmlDeviceGetUtilizationRates",
    "nvmlDeviceGetTemperature",
    "nvmlDeviceGetPowerUsage",
    "nvmlDeviceGetEnforcedPowerLimit",
    "nvmlDeviceGetMigMode",
    "nvmlDeviceGetMaxMigDeviceCount",
    "nvmlDeviceGetMigDeviceHandleByIndex",
    "nvmlDeviceIsMigDeviceHandle",
    "nvmlDeviceGetGpuInstanceId",
    "nvmlDeviceGetComputeInstanceId",
    "nvmlDeviceGetComputeRunningProcesses_v3",
    "nvmlDeviceGetComputeRunningProcesses_v2",
    "nvmlDeviceGetGraphicsRunningProcesses_v3",
    "nvmlDeviceGetGraphicsRunningProcesses_v2",
    "nvmlDeviceGetCurrentClocksEventReasons",
    "nvmlDeviceGetCurrentClocksThrottleReasons",
    "nvmlDeviceGetPerformanceState",
    "nvmlDeviceGetFieldValues",
    "nvmlDeviceGetCurrPcieLinkGeneration",
    "nvmlDeviceGetMaxPcieLinkGeneration",
    "nvmlDeviceGetCurrPcieLinkWidth",
    "nvmlDeviceGetMaxPcieLinkWidth",
    "nvmlDeviceGetPcieThroughput",
    "nvmlDeviceGetProcessUtilization",
    "nvmlEventSetCreate",
    "nvmlDeviceGetSupportedEventTypes",
    "nvmlDeviceRegisterEvents",
    "nvmlEventSetWait_v2",
    "nvmlEventSetFree",
)
EVENT_TYPES = ("xid", "sbe", "dbe", "lost")

# NVML return codes by name, without the NVML_ERROR_ prefix (stdlib only: no pynvml here).
ERROR_CODES: Mapping[str, int] = MappingProxyType(
    {
        "UNINITIALIZED": 1,
        "INVALID_ARGUMENT": 2,
        "NOT_SUPPORTED": 3,
        "NO_PERMISSION": 4,
        "ALREADY_INITIALIZED": 5,
        "NOT_FOUND": 6,
        "INSUFFICIENT_SIZE": 7,
        "INSUFFICIENT_POWER": 8,
        "DRIVER_NOT_LOADED": 9,
        "TIMEOUT": 10,
        "IRQ_ISSUE": 11,
        "LIBRARY_NOT_FOUND": 12,
        "FUNCTION_NOT_FOUND": 13,
        "CORRUPTED_INFOROM": 14,
        "GPU_IS_LOST": 15,
        "RESET_REQUIRED": 16,
        "OPERATING_SYSTEM": 17,
        "LIB_RM_VERSION_MISMATCH": 18,
        "IN_USE": 19,
        "MEMORY": 20,
        "NO_DATA": 21,
        "VGPU_ECC_NOT_SUPPORTED": 22,
        "INSUFFICIENT_RESOURCES": 23,
        "FREQ_NOT_SUPPORTED": 24,
        "ARGUMENT_VERSION_MISMATCH": 25,
        "DEPRECATED": 26,
        "NOT_READY": 27,
        "GPU_NOT_FOUND": 28,
        "INVALID_STATE": 29,
        "RESET_TYPE_NOT_SUPPORTED": 30,
        "UNKNOWN": 999,
    }
)

_NO_ERRORS: Mapping[str, str] = MappingProxyType({})


def _check_str(where: str, value: object, max_bytes: int) -> None:
    if not isinstance(value, str):
        raise ValueError(f"{where}: expected a string, got {value!r}")
    if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
        raise ValueError(f"{where}: control characters other than tab are not allowed")
    if len(value.encode()) > max_bytes:
        raise ValueError(f"{where}: longer than {max_bytes} bytes")


def _check_int(where: str, value: object, low: int, high: int) -> None:
    # bool is an int subclass; `true` is not a number in a scenario.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{where}: expected an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{where}: {value} is outside {low}..{high}")


def _check_bool(where: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: expected true or false, got {value!r}")


def parse_errors(text: str) -> dict[str, str]:
    """``"temperature:NOT_SUPPORTED, power_usage:NO_PERMISSION"`` -> ``{field: code name}``."""
    errors: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        fld, sep, code = item.partition(":")
        fld, code = fld.strip(), code.strip()
        if not sep:
            raise ValueError(f"errors: expected field:CODE, got {item.strip()!r}")
        if fld in errors:
            raise ValueError(f"errors: field {fld!r} given twice")
        errors[fld] = code
    return errors


def format_errors(errors: Mapping[str, str]) -> str:
    return ",".join(f"{fld}:{code}" for fld, code in errors.items())


@record
class Process:
    """A process holding memory on a GPU. ``used_memory`` None: NVML cannot say how much."""

    pid: int
    used_memory: int | None = None
    type: Literal["compute", "graphics"] = "compute"
    gpu_instance_id: int = NO_INSTANCE
    compute_instance_id: int = NO_INSTANCE
    # The fake C library SIGKILLs the pid right after reporting it; the simulator ignores this.
    kill_on_read: bool = False
    sm_util: int = -1  # per-process SM %; -1: no utilisation sample (the process was idle)
    mem_util: int = 0

    def __post_init__(self) -> None:
        _check_int("pid", self.pid, 0, U32_MAX)
        if self.used_memory is not None:
            _check_int("used_memory", self.used_memory, 0, U64_MAX - 1)
        if self.type not in ("compute", "graphics"):
            raise ValueError(f'type: must be "compute" or "graphics", got {self.type!r}')
        _check_int("gpu_instance_id", self.gpu_instance_id, 0, U32_MAX)
        _check_int("compute_instance_id", self.compute_instance_id, 0, U32_MAX)
        _check_bool("kill_on_read", self.kill_on_read)
        _check_int("sm_util", self.sm_util, -1, 100)
        _check_int("mem_util", self.mem_util, 0, 100)


@record
class MigDevice:
    """A MIG device; an empty ``uuid`` is derived from its position (see Scenario.mig_uuid)."""

    uuid: str = ""
    memory_total: int = 0
    memory_used: int = 0
    gpu_instance_id: int = 0
    compute_instance_id: int = 0

    def __post_init__(self) -> None:
        _check_str("uuid", self.uuid, MAX_UUID_BYTES)
        _check_int("memory_total", self.memory_total, 0, U64_MAX)
        _check_int("memory_used", self.memory_used, 0, U64_MAX)
        _check_int("gpu_instance_id", self.gpu_instance_id, 0, U32_MAX)
        _check_int("compute_instance_id", self.compute_instance_id, 0, U32_MAX)


@record
class Gpu:
    """One GPU. Memory is in bytes, power in milliwatts, temperature in degrees C.

    ``memory_used`` excludes ``memory_reserved`` (NVML's v2 view); the v1 view reports their sum
    as used. ``errors`` maps a field in ERROR_FIELDS to the NVML error its call returns. An empty
    ``uuid`` is derived from the GPU's index (see Scenario.gpu_uuid).
    """

    name: str = "NVIDIA H100 80GB HBM3"
    uuid: str = ""
    memory_total: int = 85899345920
    memory_used: int = 0
    memory_reserved: int = 0
    utilization_gpu: int = 0
    utilization_memory: int = 0
    temperature: int = 30
    power_usage_mw: int = 70000
    power_limit_mw: int = 700000
    mig_current: int = 0
    mig_pending: int = 0
    lost: bool = False
    errors: Mapping[str, str] = field(default_factory=lambda: _NO_ERRORS)
    # Health: NVML's clock event reason bits, P-state, ECC, retired pages, remapped rows, PCIe
    # (throughput in KB/s, as NVML gives it), NVLink totals over all links (0 links: no NVLink),
    # and the event types nvmlDeviceGetSupportedEventTypes reports.
    clocks_event_reasons: int = 0
    performance_state: int = 0
    ecc_mode: int = 1
    ecc_sbe_volatile: int = 0
    ecc_dbe_volatile: int = 0
    ecc_sbe_aggregate: int = 0
    ecc_dbe_aggregate: int = 0
    retired_sbe: int = 0
    retired_dbe: int = 0
    retired_pending: int = 0
    remapped_cor: int = 0
    remapped_unc: int = 0
    remap_pending: int = 0
    remap_failure: int = 0
    pcie_replay: int = 0
    pcie_gen: int = 5
    pcie_gen_max: int = 5
    pcie_width: int = 16
    pcie_width_max: int = 16
    pcie_tx_kbps: int = 0
    pcie_rx_kbps: int = 0
    nvlink_links: int = 0
    nvlink_replay: int = 0
    nvlink_recovery: int = 0
    nvlink_crc_flit: int = 0
    nvlink_crc_data: int = 0
    supported_events: int = 0xF  # single- and double-bit ECC, P-state, critical XID
    processes: tuple[Process, ...] = ()
    mig_devices: tuple[MigDevice, ...] = ()

    def __post_init__(self) -> None:
        _check_str("name", self.name, MAX_NAME_BYTES)
        _check_str("uuid", self.uuid, MAX_UUID_BYTES)
        for key in ("memory_total", "memory_used", "memory_reserved"):
            _check_int(key, getattr(self, key), 0, U64_MAX)
        for key in ("utilization_gpu", "utilization_memory"):
            _check_int(key, getattr(self, key), 0, 100)
        for key in ("temperature", "power_usage_mw", "power_limit_mw"):
            _check_int(key, getattr(self, key), 0, U32_MAX)
        for key in ("mig_current", "mig_pending"):
            _check_int(key, getattr(self, key), 0, 1)
        _check_bool("lost", self.lost)
        for key, high in _HEALTH_LIMITS.items():
            _check_int(key, getattr(self, key), 0, high)
        if not isinstance(self.errors, Mapping):
            raise ValueError("errors: expected a mapping of field to error code name")
        for fld, code in self.errors.items():
            if fld not in ERROR_FIELDS:
                raise ValueError(f"errors: unknown field {fld!r}")
            if code not in ERROR_CODES:
                raise ValueError(f"errors: unknown error code {code!r}")
        if len(format_errors(self.errors)) > 511:
            raise ValueError("errors: longer than 511 bytes")
        object.__setattr__(self, "errors", MappingProxyType(dict(self.errors)))
        object.__setattr__(self, "processes", tuple(self.processes))
        object.__setattr__(self, "mig_devices", tuple(self.mig_devices))
        if len(self.processes) > MAX_PROCESSES_PER_GPU:
            raise ValueError(f"more than {MAX_PROCESSES_PER_GPU} processes on one GPU")
        if len(self.mig_devices) > MAX_MIG_DEVICES_PER_GPU:
            raise ValueError(f"more than {MAX_MIG_DEVICES_PER_GPU} MIG devices on one GPU")


_HEALTH_LIMITS = {
    "clocks_event_reasons": U64_MAX,
    "performance_state": PSTATE_UNKNOWN,
    "ecc_mode": 1,
    "ecc_sbe_volatile": U64_MAX,
    "ecc_dbe_volatile": U64_MAX,
    "ecc_sbe_aggregate": U64_MAX,
    "ecc_dbe_aggregate": U64_MAX,
    "retired_sbe": U64_MAX,
    "retired_dbe": U64_MAX,
    "retired_pending": 1,
    "remapped_cor": U32_MAX,
    "remapped_unc": U32_MAX,
    "remap_pending": 1,
    "remap_failure": 1,
    "pcie_replay": U64_MAX,
    "pcie_gen": U32_MAX,
    "pcie_gen_max": U32_MAX,
    "pcie_width": U32_MAX,
    "pcie_width_max": U32_MAX,
    "pcie_tx_kbps": U32_MAX,
    "pcie_rx_kbps": U32_MAX,
    "nvlink_links": MAX_NVLINKS,
    "nvlink_replay": U64_MAX,
    "nvlink_recovery": U64_MAX,
    "nvlink_crc_flit": U64_MAX,
    "nvlink_crc_data": U64_MAX,
    "supported_events": U64_MAX,
}


@record
class Event:
    """At ``at_ms`` after the scenario is loaded: an XID (``data``: its number), a single- or
    double-bit ECC event for nvmlEventSetWait, or GPU ``gpu`` falls off the bus (lost)."""

    at_ms: int = 0
    gpu: int = 0
    type: Literal["xid", "sbe", "dbe", "lost"] = "xid"
    data: int = 0

    def __post_init__(self) -> None:
        _check_int("at_ms", self.at_ms, 0, U32_MAX)
        _check_int("gpu", self.gpu, 0, MAX_GPUS - 1)
        if self.type not in EVENT_TYPES:
            raise ValueError(f"type must be xid, sbe, dbe or lost, got {self.type!r}")
        _check_int("data", self.data, 0, U64_MAX)


@record
class Scenario:
    """A whole host; ``dataclasses.replace`` makes the next frame of an animation."""

    driver_version: str = "550.54.15"
    nvml_version: str = "12.550.54.15"
    cuda_driver_version: int = 12040
    process_api: int = 3
    gpus: tuple[Gpu, ...] = ()
    missing_functions: tuple[str, ...] = ()  # an older driver: these return FUNCTION_NOT_FOUND
    events: tuple[Event, ...] = ()

    def __post_init__(self) -> None:
        _check_str("driver_version", self.driver_version, MAX_VERSION_BYTES)
        _check_str("nvml_version", self.nvml_version, MAX_VERSION_BYTES)
        _check_int("cuda_driver_version", self.cuda_driver_version, -(2**31), 2**31 - 1)
        if self.process_api not in (2, 3) or isinstance(self.process_api, bool):
            raise ValueError(f"process_api: must be 2 or 3, got {self.process_api!r}")
        object.__setattr__(self, "gpus", tuple(self.gpus))
        if len(self.gpus) > MAX_GPUS:
            raise ValueError(f"more than {MAX_GPUS} GPUs")
        object.__setattr__(self, "missing_functions", tuple(self.missing_functions))
        for name in self.missing_functions:
            if name not in FUNCTIONS:
                raise ValueError(f"missing_functions: unknown function {name!r}")
        if len(",".join(self.missing_functions)) > 511:
            raise ValueError("missing_functions: longer than 511 bytes")
        object.__setattr__(self, "events", tuple(self.events))
        if len(self.events) > MAX_EVENTS:
            raise ValueError(f"more than {MAX_EVENTS} events")
        for i, e in enumerate(self.events):
            if e.gpu >= len(self.gpus):
                raise ValueError(f"event[{i}].gpu {e.gpu}: there is no such GPU")

    def gpu_uuid(self, index: int) -> str:
        return self.gpus[index].uuid or f"GPU-00000000-0000-0000-0000-{index:012x}"

    def mig_uuid(self, gpu_index: int, mig_index: int) -> str:
        uuid = self.gpus[gpu_index].mig_devices[mig_index].uuid
        return uuid or f"MIG-00000000-0000-0000-{gpu_index:04x}-{mig_index:012x}"

    # -- dict / TOML ------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Builds a scenario from the TOML-shaped dict ``tomllib`` returns; ValueError if bad."""
        top = _fields(data, "", _TOP_KEYS, frozenset({"gpu", "event"}))
        if "missing_functions" in top:
            names = top["missing_functions"]
            if not isinstance(names, str):
                raise ValueError("missing_functions: expected a string")
            top["missing_functions"] = tuple(n.strip() for n in names.split(",") if n.strip())
        gpus = []
        for i, gd in enumerate(_table_list(data, "gpu", "")):
            where = f"gpu[{i}]."
            kwargs = _fields(gd, where, _GPU_KEYS, frozenset(_GPU_TABLES))
            if "errors" in kwargs:
                if not isinstance(kwargs["errors"], str):
                    raise ValueError(f"{where}errors: expected a string")
                kwargs["errors"] = _wrap(where + "errors", parse_errors, kwargs["errors"])
            procs = []
            for j, pd in enumerate(_table_list(gd, "process", where)):
                pwhere = f"{where}process[{j}]."
                pkw = _fields(pd, pwhere, _PROCESS_KEYS)
                if "pid" not in pkw:
                    raise ValueError(f"{pwhere}pid: missing")
                used = pkw.get("used_memory")
                if used == -1 or used == U64_MAX:  # both spell "not available"
                    pkw["used_memory"] = None
                procs.append(_wrap(pwhere[:-1], Process, **pkw))
            migs = [
                _wrap(f"{where}mig[{j}]", MigDevice, **_fields(md, f"{where}mig[{j}].", _MIG_KEYS))
                for j, md in enumerate(_table_list(gd, "mig", where))
            ]
            gpus.append(
                _wrap(where[:-1], Gpu, **kwargs, processes=tuple(procs), mig_devices=tuple(migs))
            )
        events = tuple(
            _wrap(f"event[{i}]", Event, **_fields(ed, f"event[{i}].", _EVENT_KEYS))
            for i, ed in enumerate(_table_list(data, "event", ""))
        )
        return _wrap("scenario", Scenario, **top, gpus=tuple(gpus), events=events)

    def to_dict(self) -> dict[str, Any]:
        """The TOML-shaped dict: ``Scenario.from_dict(s.to_dict()) == s``."""
        out: dict[str, Any] = {key: getattr(self, key) for key in _TOP_KEYS}
        if self.missing_functions:
            out["missing_functions"] = ",".join(self.missing_functions)
        else:
            del out["missing_functions"]
        out["gpu"] = []
        for gpu in self.gpus:
            gd: dict[str, Any] = {}
            for key in _GPU_KEYS:
                value = getattr(gpu, key)
                if key == "errors":
                    value = format_errors(value)
                if value != "" or key not in ("uuid", "errors"):
                    gd[key] = value
            procs = []
            for proc in gpu.processes:
                pd = {key: getattr(proc, key) for key in _PROCESS_KEYS}
                for key in ("gpu_instance_id", "compute_instance_id"):
                    if pd[key] == NO_INSTANCE:
                        del pd[key]
                if pd["used_memory"] is None:
                    del pd["used_memory"]
                procs.append(pd)
            migs = [{key: getattr(mig, key) for key in _MIG_KEYS} for mig in gpu.mig_devices]
            for md in migs:
                if not md["uuid"]:
                    del md["uuid"]
            gd["process"] = procs
            gd["mig"] = migs
            out["gpu"].append(gd)
        if self.events:
            out["event"] = [{key: getattr(e, key) for key in _EVENT_KEYS} for e in self.events]
        return out

    def to_toml(self) -> str:
        d = self.to_dict()
        lines = [f"{key} = {_toml_value(d[key])}" for key in _TOP_KEYS if key in d]
        for gd in d["gpu"]:
            lines += ["", "[[gpu]]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in gd.items() if k not in _GPU_TABLES]
            for table in _GPU_TABLES:
                for sub in gd[table]:
                    lines += ["", f"[[gpu.{table}]]"]
                    lines += [f"{k} = {_toml_value(v)}" for k, v in sub.items()]
        for ed in d.get("event", []):
            lines += ["", "[[event]]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in ed.items()]
        return "\n".join(lines) + "\n"

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Scenario:
        with open(path, "rb") as f:
            return cls.from_dict(tomllib.load(f))

    def write(self, path: str | os.PathLike[str]) -> None:
        """Writes atomically: a reader sees the old file or the new one, never half of one."""
        target = Path(path)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.to_toml())
            os.replace(tmp, target)
        except BaseException:
            os.unlink(tmp)
            raise


_TOP_KEYS = (
    "driver_version",
    "nvml_version",
    "cuda_driver_version",
    "process_api",
    "missing_functions",
)
_GPU_KEYS = (
    "name",
    "uuid",
    "memory_total",
    "memory_used",
    "memory_reserved",
    "utilization_gpu",
    "utilization_memory",
    "temperature",
    "power_usage_mw",
    "power_limit_mw",
    "mig_current",
    "mig_pending",
    "lost",
    "errors",
    *_HEALTH_LIMITS,
)
_GPU_TABLES = ("process", "mig")
_PROCESS_KEYS = (
    "pid",
    "used_memory",
    "type",
    "gpu_instance_id",
    "compute_instance_id",
    "kill_on_read",
    "sm_util",
    "mem_util",
)
_EVENT_KEYS = ("at_ms", "gpu", "type", "data")
_MIG_KEYS = ("uuid", "memory_total", "memory_used", "gpu_instance_id", "compute_instance_id")


def _fields(
    data: object, where: str, keys: tuple[str, ...], tables: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The known keys of one table; ValueError naming the first unknown one."""
    if not isinstance(data, Mapping):
        raise ValueError(f"{where[:-1] or 'scenario'}: expected a table")
    for key in data:
        if key not in keys and key not in tables:
            raise ValueError(f"unknown key {where}{key}")
    return {key: data[key] for key in keys if key in data}


def _table_list(data: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{where}{key}: expected an array of tables")
    return value


def _wrap(where: str, build: Any, *args: Any, **kwargs: Any) -> Any:
    """Calls build, prefixing a ValueError's message with where the bad value sits."""
    try:
        return build(*args, **kwargs)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"cannot write {value!r} to a scenario")
