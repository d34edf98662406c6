"""GPUs, per-process VRAM and use, and GPU health through NVML.

The backend is the ``pynvml`` module (nvidia-ml-py) or anything with the same functions (the demo's
simulated NVML). NVML is initialised once and handles are created once; fields that do not change
(name, UUID) are cached for the life of the handle, slow ones (power limit, MIG mode) for a while.
Health is read by nvml_health; from the second poll on (never in a one-shot run) two daemon
threads watch XID/ECC events (nvml_events) and sample PCIe throughput (nvml_pcie).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from vramtop.model import GpuReading, HealthEvent, MigReading, ProcessReading, freeze
from vramtop.records import record
from vramtop.sources.base import SourceError
from vramtop.sources.nvml_calls import LOST, Calls, Lost, explain
from vramtop.sources.nvml_events import EventLog, EventWatcher, Watched
from vramtop.sources.nvml_health import HealthReader, HealthState
from vramtop.sources.nvml_pcie import PcieSampler
from vramtop.sources.nvml_start import import_pynvml, take_early

SLOW_FIELD_TTL = 30.0  # seconds: power limit and MIG mode change only by an admin's hand
INIT_RETRY = 30.0  # seconds between attempts to load a missing driver
__all__ = ["LOST", "GpuSelection", "NvmlReading", "NvmlSource", "explain"]


@record
class NvmlReading:
    """One NVML poll: the GPUs, the driver, and why anything is missing."""

    gpus: tuple[GpuReading, ...]
    driver_version: str | None
    note: str = ""  # e.g. GPU selection that matched nothing
    events: tuple[HealthEvent, ...] = ()  # recent XID / ECC / lost-GPU events, oldest first
    events_note: str = ""  # why events are not watched, when they are not


class GpuSelection:
    """``--gpus 0,2`` or ``CUDA_VISIBLE_DEVICES``: indices, UUIDs or UUID prefixes."""

    def __init__(self, tokens: Iterable[str]) -> None:
        self.tokens = tuple(tokens)

    @classmethod
    def parse(cls, text: str) -> GpuSelection:
        """Raises ValueError with a sentence for malformed lists."""
        text = text.strip()
        if text in ("", "-1", "none", "NoDevFiles"):
            return cls(())
        tokens = [t.strip() for t in text.split(",")]
        for t in tokens:
            if not t:
                raise ValueError(f"empty entry in GPU list {text!r}")
            if not (t.isdigit() or t.upper().startswith(("GPU-", "MIG-"))):
                raise ValueError(
                    f"GPU list entry {t!r} is neither an index nor a UUID (GPU-... or MIG-...)"
                )
        return cls(tokens)

    def matches(self, index: int, uuid: str | None) -> bool:
        return any(self._match(t, index, uuid) for t in self.tokens)

    def unmatched(self, gpus: list[tuple[int, str | None]]) -> list[str]:
        return [t for t in self.tokens if not any(self._match(t, i, u) for i, u in gpus)]

    @staticmethod
    def _match(token: str, index: int, uuid: str | None) -> bool:
        if token.isdigit():
            return int(token) == index
        return uuid is not None and uuid.upper().startswith(token.upper())


_Lost = Lost


@dataclass(slots=True)
class _Device:
    """A GPU's handle and what is read of it once or on the slow schedule."""

    index: int
    handle: Any
    name: str | None = None
    uuid: str | None = None
    static_reasons: dict[str, str] | None = None
    slow_at: float = -1e18
    power_limit_watts: float | None = None
    mig_mode: bool | None = None
    slow_reasons: dict[str, str] | None = None
    health: HealthState = field(default_factory=HealthState)
    lost: bool = False


class NvmlSource:
    name = "nvml"

    def __init__(
        self,
        backend: Any = None,
        selection: GpuSelection | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        self._selection = selection
        self._clock = clock
        self._devices: list[_Device] | None = None
        self._driver: str | None = None
        self._init_error: str | None = None
        self._init_at = -1e18
        self._memory_v2 = True
        self._proc_v3 = True
        self._polls = 0
        self._events = EventLog()
        self._watcher: EventWatcher | None = None
        self._sampler: PcieSampler | None = None
        self._health: HealthReader | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def _nvml(self) -> Any:
        if self._backend is None:
            self._backend = import_pynvml()
        return self._backend

    def _ensure_init(self) -> list[_Device]:
        if self._devices is not None:
            return self._devices
        now = self._clock()
        if self._init_error and now - self._init_at < INIT_RETRY:
            raise SourceError(self._init_error)
        self._init_at = now
        early = take_early() if self._backend is None else None
        if early is not None:  # the command line started NVML while it imported the rest
            self._backend, failed = early
        nv = self._nvml()
        try:
            if early is None:
                nv.nvmlInit()
            elif failed is not None:
                raise failed
        except nv.NVMLError as err:
            self._init_error = explain(err)
            raise SourceError(self._init_error) from None
        try:
            self._driver = _text(nv.nvmlSystemGetDriverVersion())
        except nv.NVMLError:
            self._driver = None
        try:
            count = nv.nvmlDeviceGetCount()
            devices = [_Device(i, nv.nvmlDeviceGetHandleByIndex(i)) for i in range(count)]
        except nv.NVMLError as err:
            self._init_error = explain(err)
            nv.nvmlShutdown()
            raise SourceError(self._init_error) from None
        self._init_error = None
        self._devices = devices
        calls = Calls(nv)
        self._health = HealthReader(calls, self._clock)
        self._watcher = EventWatcher(calls, self._events)
        self._sampler = PcieSampler(calls)
        return devices

    def _start_background(self, devices: list[_Device]) -> None:
        """Events and PCIe sampling, for a source that polls again (not a one-shot run)."""
        assert self._watcher is not None and self._sampler is not None
        alive = [d for d in devices if not d.lost]
        self._watcher.start([Watched(d.index, d.uuid, d.handle) for d in alive])
        self._sampler.start([(d.index, d.handle) for d in alive])

    def close(self) -> None:
        """Stops the threads (within about a second), then shuts NVML down."""
        for worker in (self._watcher, self._sampler):
            if worker is not None:
                worker.stop()
        if self._devices is not None:
            with contextlib.suppress(Exception):
                self._nvml().nvmlShutdown()
            self._devices = None
        self._polls = 0  # a source polled again after close() starts afresh

    # -- polling ---------------------------------------------------------------------------

    def poll(self) -> NvmlReading:
        devices = self._ensure_init()
        self._polls += 1
        if self._polls == 2:
            self._start_background(devices)
        gpus: list[GpuReading] = []
        seen: list[tuple[int, str | None]] = []
        for dev in devices:
            self._read_static(dev)
            seen.append((dev.index, dev.uuid))
            if self._selection is not None and not self._selection.matches(dev.index, dev.uuid):
                continue
            gpu = self._read(dev)
            if gpu.state == "lost" and not dev.lost:
                self._events.lost(dev.index, dev.uuid)
            dev.lost = gpu.state == "lost"
            gpus.append(gpu)
        note = ""
        if self._selection is not None:
            missing = self._selection.unmatched(seen)
            if missing:
                note = (
                    f"GPU selection {', '.join(missing)} matched no GPU "
                    f"(this host has {len(devices)})"
                )
        events_note = self._watcher.status if self._watcher is not None else ""
        return NvmlReading(tuple(gpus), self._driver, note, self._events.snapshot(), events_note)

    def _call(self, reasons: dict[str, str], field: str, fn: Callable[..., Any], *args: Any) -> Any:
        nv = self._backend
        try:
            return fn(*args)
        except nv.NVMLError_GpuIsLost:
            raise _Lost from None
        except nv.NVMLError as err:
            reasons[field] = explain(err)
            return None

    def _read_static(self, dev: _Device) -> None:
        if dev.static_reasons is not None:
            return
        nv = self._backend
        reasons: dict[str, str] = {}
        try:
            dev.name = _text(self._call(reasons, "name", nv.nvmlDeviceGetName, dev.handle))
            dev.uuid = _text(self._call(reasons, "uuid", nv.nvmlDeviceGetUUID, dev.handle))
        except _Lost:
            return  # try again next time: a lost GPU may come back after a reset
        dev.static_reasons = reasons

    def _read_slow(self, dev: _Device) -> dict[str, str]:
        now = self._clock()
        if dev.slow_reasons is not None and now - dev.slow_at < SLOW_FIELD_TTL:
            return dev.slow_reasons
        nv = self._backend
        reasons: dict[str, str] = {}
        limit = self._call(
            reasons, "power_limit_watts", nv.nvmlDeviceGetEnforcedPowerLimit, dev.handle
        )
        mig = self._call(reasons, "mig_mode", nv.nvmlDeviceGetMigMode, dev.handle)
        dev.power_limit_watts = None if limit is None else limit / 1000.0
        dev.mig_mode = None if mig is None else bool(mig[0])
        dev.slow_reasons, dev.slow_at = reasons, now
        return reasons

    def _read(self, dev: _Device) -> GpuReading:
        nv = self._backend
        h = dev.handle
        reasons: dict[str, str] = dict(dev.static_reasons or {})
        try:
            reasons.update(self._read_slow(dev))
            used, total, reserved = self._memory(reasons, h)
            util = self._call(reasons, "utilization_percent", nv.nvmlDeviceGetUtilizationRates, h)
            if util is None:
                reasons["memory_utilization_percent"] = reasons["utilization_percent"]
            temp = self._call(
                reasons, "temperature_c", nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU
            )
            power = self._call(reasons, "power_watts", nv.nvmlDeviceGetPowerUsage, h)
            procs = self._processes(reasons, dev.index, h, health=dev.health)
            migs: tuple[MigReading, ...] = ()
            if dev.mig_mode:
                migs, procs = self._mig(reasons, dev.index, h, procs)
            assert self._health is not None and self._sampler is not None
            health = self._health.read(dev.health, h, self._sampler.latest(dev.index))
        except _Lost:
            return GpuReading(
                index=dev.index,
                uuid=dev.uuid,
                name=dev.name,
                state="lost",
                unavailable=freeze({"state": LOST}),
            )
        return GpuReading(
            index=dev.index,
            uuid=dev.uuid,
            name=dev.name,
            memory_used_bytes=used,
            memory_total_bytes=total,
            memory_reserved_bytes=reserved,
            utilization_percent=None if util is None else float(util.gpu),
            memory_utilization_percent=None if util is None else float(util.memory),
            temperature_c=None if temp is None else float(temp),
            power_watts=None if power is None else power / 1000.0,
            power_limit_watts=dev.power_limit_watts,
            mig_mode=dev.mig_mode,
            mig_devices=migs,
            processes=tuple(procs),
            unavailable=freeze(reasons),
            health=health,
        )

    def _memory(self, reasons: dict[str, str], h: Any) -> tuple[int | None, int | None, int | None]:
        """v2 memory info matches nvidia-smi (reserved memory not counted as used)."""
        nv = self._backend
        if self._memory_v2:
            try:
                mem = nv.nvmlDeviceGetMemoryInfo(h, version=nv.nvmlMemory_v2)
                return int(mem.used), int(mem.total), int(mem.reserved)
            except nv.NVMLError_GpuIsLost:
                raise _Lost from None
            except nv.NVMLError:
                # Old drivers lack _v2 (FunctionNotFound) or reject its version: use v1 from now on.
                self._memory_v2 = False
        mem = self._call(reasons, "memory_used_bytes", nv.nvmlDeviceGetMemoryInfo, h)
        if mem is None:
            reasons["memory_total_bytes"] = reasons["memory_used_bytes"]
            return None, None, None
        return int(mem.used), int(mem.total), None

    def _process_list(self, kind: str, h: Any) -> list[Any]:
        nv = self._backend
        stem = (
            "nvmlDeviceGetComputeRunningProcesses"
            if kind == "compute"
            else ("nvmlDeviceGetGraphicsRunningProcesses")
        )
        if self._proc_v3:
            try:
                return getattr(nv, stem + "_v3")(h)
            except (nv.NVMLError_FunctionNotFound, nv.NVMLLibraryMismatchError):
                self._proc_v3 = False  # driver older than the bindings
        return getattr(nv, stem + "_v2")(h)

    def _processes(
        self,
        reasons: dict[str, str],
        index: int,
        h: Any,
        mig: str | None = None,
        health: HealthState | None = None,
    ) -> list[ProcessReading]:
        """The GPU's (or MIG device's) processes; with ``health``, each one's SM and
        memory-controller use (a process without a sample was idle: 0 %)."""
        nv = self._backend
        merged: dict[int, tuple[int | None, str]] = {}  # pid -> (used, kind)
        for kind in ("compute", "graphics"):
            try:
                found = self._process_list(kind, h)
            except nv.NVMLError_GpuIsLost:
                raise _Lost from None
            except nv.NVMLError as err:
                reasons[f"{kind}_processes"] = explain(err)
                continue
            for p in found:
                pid = int(p.pid)
                used = None if p.usedGpuMemory is None else int(p.usedGpuMemory)
                if pid in merged:
                    merged[pid] = (_max_known(merged[pid][0], used), "compute+graphics")
                else:
                    merged[pid] = (used, kind)
        use: dict[int, tuple[float, float]] | None = {}
        why: dict[str, str] = {}
        if merged and (health is not None or mig is not None):
            if health is None:
                use, reason = None, "not read per MIG device"
            else:
                assert self._health is not None
                use, reason = self._health.process_use(health, h)
            why = dict.fromkeys(("sm_percent", "memory_controller_percent"), reason or "")
        unavailable = freeze(why) if use is None else freeze({})
        idle = (0.0, 0.0) if health is not None else (None, None)
        out = []
        for pid, (used, kind) in merged.items():
            sm, mem = (None, None) if use is None else use.get(pid, idle)
            out.append(
                ProcessReading(
                    pid,
                    index,
                    used,
                    kind,
                    mig_device=mig,
                    sm_percent=sm,
                    memory_controller_percent=mem,
                    unavailable=unavailable,
                )
            )
        return out

    def _mig(
        self, reasons: dict[str, str], index: int, h: Any, procs: list[ProcessReading]
    ) -> tuple[tuple[MigReading, ...], list[ProcessReading]]:
        nv = self._backend
        count = self._call(reasons, "mig_devices", nv.nvmlDeviceGetMaxMigDeviceCount, h) or 0
        migs: list[MigReading] = []
        by_pid = {p.pid: p for p in procs}
        for i in range(count):
            try:
                mh = nv.nvmlDeviceGetMigDeviceHandleByIndex(h, i)
            except nv.NVMLError_NotFound:
                continue
            except nv.NVMLError_GpuIsLost:
                raise _Lost from None
            except nv.NVMLError as err:
                reasons["mig_devices"] = explain(err)
                break
            scratch: dict[str, str] = {}
            uuid = _text(self._call(scratch, "uuid", nv.nvmlDeviceGetUUID, mh)) or f"MIG {i}"
            gi = self._call(scratch, "gi", nv.nvmlDeviceGetGpuInstanceId, mh)
            mem = self._call(scratch, "memory", nv.nvmlDeviceGetMemoryInfo, mh)
            migs.append(
                MigReading(
                    uuid=uuid,
                    gpu_instance_id=gi,
                    memory_used_bytes=None if mem is None else int(mem.used),
                    memory_total_bytes=None if mem is None else int(mem.total),
                )
            )
            for p in self._processes(scratch, index, mh, mig=uuid):
                old = by_pid.get(p.pid)
                if old is None:
                    by_pid[p.pid] = p
                else:
                    by_pid[p.pid] = replace(
                        old,
                        mig_device=uuid,
                        used_memory_bytes=_max_known(old.used_memory_bytes, p.used_memory_bytes),
                    )
        return tuple(migs), list(by_pid.values())


def _max_known(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
