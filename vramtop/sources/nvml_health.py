"""A GPU's health through NVML, on three schedules.

Every refresh (cheap, changes with load): clock event (throttle) reasons, performance state,
current PCIe link generation (it drops at idle), per-process SM and memory-controller use. Every
SLOW_TTL seconds: in one nvmlDeviceGetFieldValues call per GPU ECC mode and counts, retired
pages, remapped rows, the PCIe replay counter, NVLink link count and error totals (counters that
move only when something breaks; a new double-bit error arrives at once as an event anyway), and
the current link width (a degraded link stays degraded). Once: the link's maximum generation and
width. PCIe throughput comes from PcieSampler's thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from vramtop.health import decode_throttle
from vramtop.model import GpuHealth, freeze
from vramtop.sources.nvml_calls import Calls, explain

SLOW_TTL = 30.0  # seconds between reads of the ECC / row-remap / retired-page / NVLink counters
PSTATE_UNKNOWN = 32
THROTTLE_FUNCTIONS = (
    "nvmlDeviceGetCurrentClocksEventReasons",  # the name since driver 535
    "nvmlDeviceGetCurrentClocksThrottleReasons",
)

# NVML_FI_DEV_* ids (NVML's numbers, stable ABI) -> the GpuHealth field each fills.
SLOW_FIELDS: tuple[tuple[int, str], ...] = (
    (1, "ecc_mode"),  # ECC_CURRENT
    (3, "ecc_corrected_volatile"),  # ECC_SBE_VOL_TOTAL
    (4, "ecc_uncorrected_volatile"),  # ECC_DBE_VOL_TOTAL
    (5, "ecc_corrected_aggregate"),  # ECC_SBE_AGG_TOTAL
    (6, "ecc_uncorrected_aggregate"),  # ECC_DBE_AGG_TOTAL
    (29, "retired_pages_sbe"),  # RETIRED_SBE
    (30, "retired_pages_dbe"),  # RETIRED_DBE
    (31, "retired_pages_pending"),  # RETIRED_PENDING
    (142, "remapped_rows_correctable"),  # REMAPPED_COR
    (143, "remapped_rows_uncorrectable"),  # REMAPPED_UNC
    (144, "remapped_rows_pending"),  # REMAPPED_PENDING
    (145, "remapped_rows_failure"),  # REMAPPED_FAILURE
    (94, "pcie_replay_count"),  # PCIE_REPLAY_COUNTER
    (91, "nvlink_links"),  # NVLINK_LINK_COUNT
    (52, "nvlink.replay"),  # NVLINK_REPLAY_ERROR_COUNT_TOTAL
    (59, "nvlink.recovery"),  # NVLINK_RECOVERY_ERROR_COUNT_TOTAL
    (38, "nvlink.crc_flit"),  # NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL
    (45, "nvlink.crc_data"),  # NVLINK_CRC_DATA_ERROR_COUNT_TOTAL
)
FLAGS = frozenset(
    {"ecc_mode", "retired_pages_pending", "remapped_rows_pending", "remapped_rows_failure"}
)
_SLOW_NAMES = tuple(
    dict.fromkeys(
        name.split(".")[0] + ("_errors" if "." in name else "") for _, name in SLOW_FIELDS
    )
)
NO_NVLINK = "no NVLink on this GPU"


@dataclass(slots=True)
class HealthState:
    """What one GPU's health reads remember between refreshes."""

    unsupported: dict[str, str] = field(default_factory=dict)  # function -> reason, per GPU
    link_max: tuple[int | None, int | None] | None = None
    link_max_reasons: dict[str, str] = field(default_factory=dict)
    slow_at: float = -1e18
    slow: dict[str, Any] = field(default_factory=dict)
    slow_reasons: dict[str, str] = field(default_factory=dict)
    util_seen: int = 0  # last-seen timestamp of per-process utilisation samples (µs)


class HealthReader:
    def __init__(self, calls: Calls, clock: Callable[[], float] = time.monotonic) -> None:
        self._calls = calls
        self._clock = clock

    def read(
        self, st: HealthState, h: Any, pcie: tuple[int | None, int | None, dict[str, str]]
    ) -> GpuHealth:
        """One GPU's health; raises Lost when the GPU is lost. ``pcie``: (tx, rx, reasons) from
        the PcieSampler."""
        get = self._calls.get
        reasons: dict[str, str] = {}
        throttle = self._throttle(st, h, reasons)
        pstate = get(
            reasons,
            ("performance_state",),
            "nvmlDeviceGetPerformanceState",
            h,
            memo=st.unsupported,
        )
        if pstate == PSTATE_UNKNOWN:
            pstate = None
            reasons["performance_state"] = "NVML reports the performance state as unknown"
        gen = get(
            reasons,
            ("pcie_link_gen",),
            "nvmlDeviceGetCurrPcieLinkGeneration",
            h,
            memo=st.unsupported,
        )
        gen_max, width_max = self._link_max(st, h)
        reasons.update(st.link_max_reasons)
        self._slow(st, h)
        reasons.update(st.slow_reasons)
        tx, rx, pcie_reasons = pcie
        reasons.update(pcie_reasons)
        slow = st.slow
        return GpuHealth(
            throttle_reasons=throttle,
            performance_state=pstate,
            pcie_link_gen=gen,
            pcie_link_gen_max=gen_max,
            pcie_link_width_max=width_max,
            pcie_tx_bytes_per_second=tx,
            pcie_rx_bytes_per_second=rx,
            nvlink_errors=slow.get("nvlink_errors"),
            **{k: v for k, v in slow.items() if k != "nvlink_errors"},
            unavailable=freeze(reasons),
        )

    def _throttle(self, st: HealthState, h: Any, reasons: dict[str, str]) -> tuple[str, ...] | None:
        calls = self._calls
        for name in THROTTLE_FUNCTIONS:
            if name in calls.missing:
                continue
            scratch: dict[str, str] = {}
            mask = calls.get(scratch, ("throttle_reasons",), name, h, memo=st.unsupported)
            if mask is not None:
                return decode_throttle(int(mask))
            if name not in calls.missing:  # supported by the driver, not by this GPU
                reasons.update(scratch)
                return None
        reasons["throttle_reasons"] = "driver too old for clock event reasons"
        return None

    def _link_max(self, st: HealthState, h: Any) -> tuple[int | None, int | None]:
        if st.link_max is None:
            get, r = self._calls.get, st.link_max_reasons
            st.link_max = (
                get(r, ("pcie_link_gen_max",), "nvmlDeviceGetMaxPcieLinkGeneration", h),
                get(r, ("pcie_link_width_max",), "nvmlDeviceGetMaxPcieLinkWidth", h),
            )
        return st.link_max

    def _slow(self, st: HealthState, h: Any) -> None:
        now = self._clock()
        if now - st.slow_at < SLOW_TTL:
            return
        reasons: dict[str, str] = {}
        values = self._calls.get(
            reasons,
            _SLOW_NAMES,
            "nvmlDeviceGetFieldValues",
            h,
            [fid for fid, _ in SLOW_FIELDS],
            memo=st.unsupported,
        )
        st.slow_at = now
        if values is None:
            st.slow, st.slow_reasons = {}, reasons
        else:
            st.slow, st.slow_reasons = self._decode(values)
        st.slow["pcie_link_width"] = self._calls.get(
            st.slow_reasons,
            ("pcie_link_width",),
            "nvmlDeviceGetCurrPcieLinkWidth",
            h,
            memo=st.unsupported,
        )

    def _decode(self, values: Any) -> tuple[dict[str, Any], dict[str, str]]:
        nv = self._calls.nv
        out: dict[str, Any] = {}
        reasons: dict[str, str] = {}
        nvlink: dict[str, int] = {}
        nvlink_reason = None
        for (_, name), v in zip(SLOW_FIELDS, values, strict=True):
            if v.nvmlReturn != 0:
                reason = explain(nv.NVMLError(v.nvmlReturn))
                if name.startswith("nvlink."):
                    nvlink_reason = nvlink_reason or reason
                else:
                    reasons[name] = reason
                continue
            value = _field_value(v)
            if name.startswith("nvlink."):
                nvlink[name.removeprefix("nvlink.")] = int(value)
            elif name in FLAGS:
                out[name] = bool(value)
            else:
                out[name] = int(value)
        if not out.get("nvlink_links"):
            # No links: no NVLink counters either, whatever they answer.
            reasons["nvlink_errors"] = NO_NVLINK
            if "nvlink_links" in reasons:
                reasons["nvlink_links"] = NO_NVLINK
        elif nvlink:
            out["nvlink_errors"] = MappingProxyType(nvlink)
        else:
            reasons["nvlink_errors"] = nvlink_reason or NO_NVLINK
        return out, reasons

    def process_use(
        self, st: HealthState, h: Any
    ) -> tuple[dict[int, tuple[float, float]] | None, str | None]:
        """Per pid (SM %, memory-controller %) from the samples newer than the last ones seen,
        as nvtop reads them; a process without a sample was idle since (0 %). (None, reason)
        when the GPU cannot say."""
        calls, nv = self._calls, self._calls.nv
        name = "nvmlDeviceGetProcessUtilization"
        known = calls.known(name, st.unsupported)
        if known is not None:
            return None, known
        fn = getattr(nv, name, None)
        if fn is None:
            return None, calls.lacks(name)
        try:
            samples = fn(h, st.util_seen)
        except nv.NVMLError as err:
            # NOT_FOUND: no sample since the last one seen, every process idle (pynvml raises
            # "success" when there were none at all).
            if isinstance(err, nv.NVMLError_NotFound) or err.value == 0:
                return {}, None
            return None, calls.reason(name, err, st.unsupported)
        latest: dict[int, Any] = {}
        for s in samples:
            pid = int(s.pid)
            if pid not in latest or s.timeStamp >= latest[pid].timeStamp:
                latest[pid] = s
            st.util_seen = max(st.util_seen, int(s.timeStamp))
        return {pid: (float(s.smUtil), float(s.memUtil)) for pid, s in latest.items()}, None


def _field_value(v: Any) -> float | int:
    """An nvmlFieldValue_t's value by its valueType (NVML_VALUE_TYPE_*)."""
    u = v.value
    return (u.dVal, u.uiVal, u.ulVal, u.ullVal, u.sllVal, u.siVal, u.usVal)[v.valueType]
