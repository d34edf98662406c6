"""Build and drive the fake ``libnvidia-ml.so.1`` (fake_nvml.c) that the real pynvml loads.

glibc resolves ``libnvidia-ml.so.1`` through LD_LIBRARY_PATH only when a process starts, so
code under test runs in a subprocess started with :func:`fake_env`::

    lib = build()
    Scenario(gpus=(Gpu(),)).write(path)
    subprocess.run([sys.executable, "-c", code], env=fake_env(lib, path))

:func:`dump` walks the NVML API on any pynvml-like object (the real module, or
vramtop.demo.simnvml.SimulatedNvml) and records every answer, for the contract test.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("fake_nvml.c")
LIBRARY_NAME = "libnvidia-ml.so.1"
GCC_FLAGS = (
    "-shared",
    "-fPIC",
    "-O2",
    "-Wall",
    "-Wextra",
    "-Werror",
    f"-Wl,-soname,{LIBRARY_NAME}",
)


def _compile(source: bytes, target: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise RuntimeError(
            "gcc was not found on PATH: the fake NVML library (tests/fakenvml/fake_nvml.c) "
            "must be compiled for these tests; install gcc"
        )
    # A unique temporary name in the target's directory, then an atomic rename: builds
    # running in parallel never see (or load) a half-written library.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        result = subprocess.run(
            [gcc, *GCC_FLAGS, "-o", tmp, "-x", "c", "-"],
            # Exactly the bytes that were hashed; #line keeps gcc's messages pointing at the file.
            input=f'#line 1 "{SOURCE}"\n'.encode() + source,
            capture_output=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"compiling {SOURCE} failed (gcc exit {result.returncode}):\n"
                + result.stderr.decode(errors="replace")
            )
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def build(out_dir: Path | None = None) -> Path:
    """Returns the path of a freshly built fake ``libnvidia-ml.so.1``.

    It is compiled once per version of fake_nvml.c into a cache under the system temp dir,
    then copied into ``out_dir`` if one is given. RuntimeError (with gcc's output) if the
    build fails or gcc is missing.
    """
    source = SOURCE.read_bytes()
    digest = hashlib.sha256(source + "\0".join(GCC_FLAGS).encode()).hexdigest()[:16]
    cache_dir = Path(tempfile.gettempdir()) / f"vramtop-fakenvml-{digest}"
    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = cache_dir / LIBRARY_NAME
    if not cached.exists():
        _compile(source, cached)
    if out_dir is None:
        return cached
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / LIBRARY_NAME
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{LIBRARY_NAME}.", suffix=".tmp")
    os.close(fd)
    try:
        shutil.copyfile(cached, tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def fake_env(
    lib_path: Path, scenario_path: Path | None, base: dict[str, str] | None = None
) -> dict[str, str]:
    """An environment in which a new process's pynvml loads the fake and reads the scenario.

    ``scenario_path`` None leaves FAKE_NVML_SCENARIO unset (the fake then fails to init).
    """
    env = dict(os.environ if base is None else base)
    lib_dir = str(Path(lib_path).parent)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (lib_dir, env.get("LD_LIBRARY_PATH", "")) if p
    )
    env.pop("FAKE_NVML_SCENARIO", None)
    if scenario_path is not None:
        env["FAKE_NVML_SCENARIO"] = str(scenario_path)
    return env


def _library(lib_path: Path) -> ctypes.CDLL:
    # The same file already loaded (e.g. by pynvml through its soname) is the same instance:
    # glibc matches loaded objects by device and inode, so these are that instance's counters.
    lib = ctypes.CDLL(str(lib_path))
    lib.fake_nvml_call_count.restype = ctypes.c_ulonglong
    lib.fake_nvml_call_count.argtypes = [ctypes.c_char_p]
    lib.fake_nvml_symbol_name.restype = ctypes.c_char_p
    lib.fake_nvml_symbol_name.argtypes = [ctypes.c_uint]
    lib.fake_nvml_reset_counts.restype = None
    lib.fake_nvml_reset_counts.argtypes = []
    return lib


def call_counts(lib_path: Path) -> dict[str, int]:
    """Calls of each NVML symbol in this process since load or reset; ``"*"`` is the total."""
    lib = _library(lib_path)
    counts = {}
    index = 0
    while (name := lib.fake_nvml_symbol_name(index)) is not None:
        counts[name.decode()] = lib.fake_nvml_call_count(name)
        index += 1
    counts["*"] = lib.fake_nvml_call_count(b"*")
    return counts


def reset_counts(lib_path: Path) -> None:
    _library(lib_path).fake_nvml_reset_counts()


# -- the contract walk ----------------------------------------------------------------------

BAD_MEMORY_VERSION = 0x01000028  # a v1 version stamp where v2 is expected


def _record(call: Any, *args: Any, convert: Any = None) -> Any:
    """The call's value (through convert), or {"error": exception class name}."""
    try:
        value = call(*args)
    except Exception as e:
        return {"error": type(e).__name__}
    return convert(value) if convert else value


def _struct(*fields: str) -> Any:
    return lambda obj: {"type": type(obj).__name__, **{f: getattr(obj, f) for f in fields}}


_memory_v1 = _struct("total", "free", "used")
_memory_v2 = _struct("version", "total", "reserved", "free", "used")
_utilization = _struct("gpu", "memory")
_c_uint = _struct("value")


_sample = _struct("pid", "smUtil", "memUtil", "encUtil", "decUtil")
# Every NVML_FI_DEV_* id the NVML source asks for, and one NVML does not know.
FIELD_IDS = (1, 3, 4, 5, 6, 29, 30, 31, 38, 45, 52, 59, 91, 94, 142, 143, 144, 145, 9999)
_VALUE_FIELDS = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")


def _field_values(values: Any) -> list[dict[str, Any]]:
    out = []
    for v in values:
        entry = {"field": v.fieldId, "scope": v.scopeId, "return": v.nvmlReturn}
        if v.nvmlReturn == 0:
            entry[_VALUE_FIELDS[v.valueType]] = getattr(v.value, _VALUE_FIELDS[v.valueType])
        entry["stamped"] = v.timestamp > 0
        out.append(entry)
    return out


def _samples(samples: list[Any]) -> list[dict[str, Any]]:
    return [{**_sample(s), "stamped": s.timeStamp > 0} for s in samples]


def _processes(procs: list[Any]) -> list[dict[str, Any]]:
    return [
        {"type": type(p).__name__, **{k: getattr(p, k) for k in sorted(vars(p))}} for p in procs
    ]


def _device(nvml: Any, handle: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "index": _record(nvml.nvmlDeviceGetIndex, handle),
        "name": _record(nvml.nvmlDeviceGetName, handle),
        "uuid": _record(nvml.nvmlDeviceGetUUID, handle),
        "memory": _record(nvml.nvmlDeviceGetMemoryInfo, handle, convert=_memory_v1),
        "memory_v2": _record(
            nvml.nvmlDeviceGetMemoryInfo, handle, nvml.nvmlMemory_v2, convert=_memory_v2
        ),
        "memory_bad_version": _record(
            nvml.nvmlDeviceGetMemoryInfo, handle, BAD_MEMORY_VERSION, convert=_memory_v2
        ),
        "utilization": _record(nvml.nvmlDeviceGetUtilizationRates, handle, convert=_utilization),
        "temperature": _record(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU),
        "temperature_bad_sensor": _record(nvml.nvmlDeviceGetTemperature, handle, 1),
        "power_usage": _record(nvml.nvmlDeviceGetPowerUsage, handle),
        "power_limit": _record(nvml.nvmlDeviceGetEnforcedPowerLimit, handle),
        "mig_mode": _record(nvml.nvmlDeviceGetMigMode, handle),
        "max_mig_count": _record(nvml.nvmlDeviceGetMaxMigDeviceCount, handle),
        "is_mig": _record(nvml.nvmlDeviceIsMigDeviceHandle, handle, convert=_c_uint),
        "gpu_instance_id": _record(nvml.nvmlDeviceGetGpuInstanceId, handle),
        "compute_instance_id": _record(nvml.nvmlDeviceGetComputeInstanceId, handle),
    }
    for kind in ("Compute", "Graphics"):
        for suffix in ("", "_v3", "_v2"):
            name = f"nvmlDeviceGet{kind}RunningProcesses{suffix}"
            out[f"{kind.lower()}_processes{suffix}"] = _record(
                getattr(nvml, name), handle, convert=_processes
            )
    out.update(_health(nvml, handle))
    if isinstance(out["uuid"], str):
        found = _record(nvml.nvmlDeviceGetHandleByUUID, out["uuid"])
        out["by_uuid"] = (
            found
            if isinstance(found, dict)
            else {
                "name": _record(nvml.nvmlDeviceGetName, found),
                "is_mig": _record(nvml.nvmlDeviceIsMigDeviceHandle, found, convert=_c_uint),
            }
        )
    return out


def _health(nvml: Any, handle: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "clocks_event_reasons": _record(nvml.nvmlDeviceGetCurrentClocksEventReasons, handle),
        "clocks_throttle_reasons": _record(nvml.nvmlDeviceGetCurrentClocksThrottleReasons, handle),
        "performance_state": _record(nvml.nvmlDeviceGetPerformanceState, handle),
        "pcie_gen": _record(nvml.nvmlDeviceGetCurrPcieLinkGeneration, handle),
        "pcie_gen_max": _record(nvml.nvmlDeviceGetMaxPcieLinkGeneration, handle),
        "pcie_width": _record(nvml.nvmlDeviceGetCurrPcieLinkWidth, handle),
        "pcie_width_max": _record(nvml.nvmlDeviceGetMaxPcieLinkWidth, handle),
        "pcie_tx": _record(nvml.nvmlDeviceGetPcieThroughput, handle, 0),
        "pcie_rx": _record(nvml.nvmlDeviceGetPcieThroughput, handle, 1),
        "pcie_bad_counter": _record(nvml.nvmlDeviceGetPcieThroughput, handle, 2),
        "field_values": _record(
            nvml.nvmlDeviceGetFieldValues, handle, list(FIELD_IDS), convert=_field_values
        ),
        "supported_events": _record(nvml.nvmlDeviceGetSupportedEventTypes, handle),
    }
    samples = _record(nvml.nvmlDeviceGetProcessUtilization, handle, 0)
    out["process_utilization"] = samples if isinstance(samples, dict) else _samples(samples)
    if isinstance(samples, list) and samples:
        # Asked again from the newest sample seen: nothing newer.
        newest = max(s.timeStamp for s in samples)
        out["process_utilization_again"] = _record(
            nvml.nvmlDeviceGetProcessUtilization, handle, newest, convert=_samples
        )
    return out


def _events(nvml: Any, count: int) -> dict[str, Any]:
    """An event set over every GPU, then what a wait that does not wait (0 ms) delivers."""
    out: dict[str, Any] = {}
    event_set = _record(nvml.nvmlEventSetCreate)
    if isinstance(event_set, dict):
        return {"create": event_set}
    out["register"] = []
    for i in range(count):
        handle = nvml.nvmlDeviceGetHandleByIndex(i)
        supported = _record(nvml.nvmlDeviceGetSupportedEventTypes, handle)
        mask = supported & 0xB if isinstance(supported, int) else 0xB  # XID, SBE, DBE
        out["register"].append(_record(nvml.nvmlDeviceRegisterEvents, handle, mask, event_set))
    out["register_unsupported"] = (
        _record(
            nvml.nvmlDeviceRegisterEvents, nvml.nvmlDeviceGetHandleByIndex(0), 1 << 40, event_set
        )
        if count
        else None
    )
    out["delivered"] = []
    for _ in range(8):
        try:
            data = nvml.nvmlEventSetWait_v2(event_set, 0)
        except Exception as e:
            out["delivered"].append({"error": type(e).__name__})
            if type(e).__name__ != "NVMLError_GpuIsLost":
                break
            continue
        out["delivered"].append(
            {
                "gpu": _record(nvml.nvmlDeviceGetIndex, data.device),
                "type": data.eventType,
                "data": data.eventData,
                "gpu_instance": data.gpuInstanceId,
                "compute_instance": data.computeInstanceId,
            }
        )
    out["free"] = _record(nvml.nvmlEventSetFree, event_set, convert=lambda _: "ok")
    out["free_again"] = _record(nvml.nvmlEventSetFree, event_set, convert=lambda _: "ok")
    out["wait_freed"] = _record(nvml.nvmlEventSetWait_v2, event_set, 0)
    return out


def dump(nvml: Any) -> dict[str, Any]:
    """Walks the NVML API vramtop uses on ``nvml`` (pynvml or SimulatedNvml): a JSON-able dict."""
    out: dict[str, Any] = {"before_init": _record(nvml.nvmlDeviceGetCount)}
    out["init"] = _record(nvml.nvmlInit, convert=lambda _: "ok")
    if out["init"] != "ok":
        return out
    out["error_strings"] = {
        code: nvml.nvmlErrorString(code) for code in (0, 1, 2, 3, 4, 9, 13, 15, 25, 999, 12345)
    }
    out["driver_version"] = _record(nvml.nvmlSystemGetDriverVersion)
    out["nvml_version"] = _record(nvml.nvmlSystemGetNVMLVersion)
    out["cuda_driver_version"] = _record(nvml.nvmlSystemGetCudaDriverVersion)
    out["cuda_driver_version_v2"] = _record(nvml.nvmlSystemGetCudaDriverVersion_v2)
    out["count"] = count = _record(nvml.nvmlDeviceGetCount)
    out["gpus"] = []
    for i in range(count if isinstance(count, int) else 0):
        handle = nvml.nvmlDeviceGetHandleByIndex(i)
        gpu = _device(nvml, handle)
        gpu["mig_devices"] = []
        max_mig = gpu["max_mig_count"]
        # One past the maximum too: that index must fail as well.
        for j in range((max_mig if isinstance(max_mig, int) else 0) + 1):
            try:
                mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, j)
            except Exception as e:
                gpu["mig_devices"].append({"error": type(e).__name__})
            else:
                gpu["mig_devices"].append(_device(nvml, mig))
        out["gpus"].append(gpu)
    out["events"] = _events(nvml, len(out["gpus"]))
    out["bad_index"] = _record(nvml.nvmlDeviceGetHandleByIndex, len(out["gpus"]))
    out["bad_uuid"] = _record(nvml.nvmlDeviceGetHandleByUUID, "GPU-does-not-exist")
    out["shutdown"] = _record(nvml.nvmlShutdown, convert=lambda _: "ok")
    out["after_shutdown"] = _record(nvml.nvmlDeviceGetCount)
    out["shutdown_again"] = _record(nvml.nvmlShutdown, convert=lambda _: "ok")
    return out
