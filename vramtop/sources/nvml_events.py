"""XID and ECC events through an NVML event set, on their own daemon thread.

The thread waits in nvmlEventSetWait_v2 with a timeout (WAIT_MS), so stop() returns within about
a second; while nothing happens it wakes once per timeout and costs nothing else. A GPU that
falls off the bus while the thread waits makes the wait fail with GPU_IS_LOST: the thread finds
which GPU (each one is asked once), records a gpu_lost event, and goes on with a new set of the
others.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from vramtop.health import xid_info
from vramtop.model import HealthEvent
from vramtop.records import record
from vramtop.sources.nvml_calls import LOST, Calls, Lost

WAIT_MS = 1000
KEEP = 200  # events kept (the Frame carries these, oldest first)
SBE, DBE, XID = 0x1, 0x2, 0x8  # nvmlEventType*: single-, double-bit ECC, critical XID
WANTED = SBE | DBE | XID
UNSUPPORTED = "not supported on this GPU"


@record
class Watched:
    """A GPU registered with the event set."""

    index: int
    uuid: str | None
    handle: Any


class EventLog:
    """The recent events, bounded; written by the event thread and the poll, read by the poll."""

    def __init__(self, keep: int = KEEP, clock: Callable[[], float] = time.time) -> None:
        self._events: deque[HealthEvent] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._clock = clock

    def add(self, event: HealthEvent) -> None:
        with self._lock:
            self._events.append(event)

    def lost(self, index: int, uuid: str | None) -> None:
        """A gpu_lost event, unless the GPU's last event already says so."""
        with self._lock:
            last = next((e for e in reversed(self._events) if e.gpu_index == index), None)
            if last is not None and last.kind == "gpu_lost":
                return
            self._events.append(
                HealthEvent(self._clock(), uuid, index, "gpu_lost", None, LOST, "critical")
            )

    def now(self) -> float:
        return self._clock()

    def snapshot(self) -> tuple[HealthEvent, ...]:
        with self._lock:
            return tuple(self._events)


def _key(handle: Any) -> Any:
    """A handle as a dict key: ctypes pointers by address, anything else (the demo's) as is."""
    if isinstance(handle, ctypes._Pointer):
        return ctypes.cast(handle, ctypes.c_void_p).value
    return handle


class EventWatcher:
    def __init__(self, calls: Calls, log: EventLog, wait_ms: int = WAIT_MS) -> None:
        self._calls = calls
        self._log = log
        self._wait_ms = wait_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.status = ""  # why events are not (or no longer) watched, once known

    def start(self, gpus: Sequence[Watched]) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, args=(list(gpus),), name="vramtop-events", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self._wait_ms / 1000 + 1.0)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self, gpus: list[Watched]) -> None:
        while gpus and not self._stop.is_set():
            made = self._register(gpus)
            if made is None:
                return
            event_set, watched = made
            try:
                gone = self._wait(event_set, watched)
            finally:
                self._free(event_set)
            if gone is None:
                return
            gpus = [g for g in gpus if g not in gone]
        if not gpus and not self.status:
            self.status = "no GPU left to watch for events"

    def _register(self, gpus: list[Watched]) -> tuple[Any, dict[Any, Watched]] | None:
        """A new event set with every GPU that reports some WANTED type; None if none does."""
        calls, nv = self._calls, self._calls.nv
        reasons: dict[str, str] = {}
        event_set = calls.get(reasons, ("events",), "nvmlEventSetCreate")
        if event_set is None:
            self.status = f"events not watched: {reasons['events']}"
            return None
        watched: dict[Any, Watched] = {}
        for g in list(gpus):
            try:
                supported = calls.get(
                    reasons, ("events",), "nvmlDeviceGetSupportedEventTypes", g.handle
                )
                mask = (supported or 0) & WANTED
                # Some platforms list ECC events they then refuse: fall back to XID alone.
                for m in dict.fromkeys((mask, mask & XID)):
                    if m:
                        try:
                            nv.nvmlDeviceRegisterEvents(g.handle, m, event_set)
                        except nv.NVMLError as err:
                            reasons["events"] = calls.reason("nvmlDeviceRegisterEvents", err)
                            continue
                        watched[_key(g.handle)] = g
                        break
            except Lost:
                self._log.lost(g.index, g.uuid)
                gpus.remove(g)
        if not watched:
            self._free(event_set)
            reason = reasons.get("events", UNSUPPORTED)
            if reason == UNSUPPORTED:
                reason = "no GPU here reports XID or ECC events"
            self.status = f"events not watched: {reason}"
            return None
        return event_set, watched

    def _wait(self, event_set: Any, watched: dict[Any, Watched]) -> list[Watched] | None:
        """Records events until stop() (None) or a GPU is lost (the lost ones)."""
        nv = self._calls.nv
        while not self._stop.is_set():
            try:
                data = nv.nvmlEventSetWait_v2(event_set, self._wait_ms)
            except nv.NVMLError_Timeout:
                continue
            except nv.NVMLError_GpuIsLost:
                return self._find_lost(list(watched.values()))
            except nv.NVMLError as err:
                self.status = f"events no longer watched: {self._calls.reason('wait', err)}"
                return None
            self._record(data, watched)
        return None

    def _find_lost(self, gpus: list[Watched]) -> list[Watched]:
        gone = []
        for g in gpus:
            try:
                self._calls.get({}, (), "nvmlDeviceGetSupportedEventTypes", g.handle)
            except Lost:
                self._log.lost(g.index, g.uuid)
                gone.append(g)
        if not gone:  # the wait said lost, no GPU admits it: do not spin on it
            self._stop.wait(self._wait_ms / 1000)
        return gone

    def _record(self, data: Any, watched: dict[Any, Watched]) -> None:
        g = watched.get(_key(data.device))
        index, uuid = (g.index, g.uuid) if g else (None, None)
        kind = int(data.eventType)
        now = self._log.now()
        if kind & XID:
            code = int(data.eventData)
            info = xid_info(code)
            event = HealthEvent(now, uuid, index, "xid", code, info.meaning, info.severity)
        elif kind & DBE:
            meaning = "double-bit ECC error (uncorrectable)"
            event = HealthEvent(now, uuid, index, "ecc_dbe", None, meaning, "critical")
        elif kind & SBE:
            meaning = "single-bit ECC error (corrected)"
            event = HealthEvent(now, uuid, index, "ecc_sbe", None, meaning, "info")
        else:
            return
        self._log.add(event)

    def _free(self, event_set: Any) -> None:
        nv = self._calls.nv
        with contextlib.suppress(nv.NVMLError, AttributeError):
            nv.nvmlEventSetFree(event_set)
