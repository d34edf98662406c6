"""GPU health seen through a GPU exporter (DCGM, nvidia_gpu_exporter): profile fields -> the same
GpuHealth a local GPU gets from NVML, and DCGM's last XID -> a health event.

A profile names a health figure by one of the field keys below; a key the exporter does not
send is None with a reason that names the metric to enable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from vramtop.health import decode_throttle, xid_info
from vramtop.model import GpuHealth, HealthEvent, freeze
from vramtop.profiles import Profile

# Field keys read as GpuHealth's counts and flags of the same name.
COUNTS = (
    "performance_state",
    "ecc_corrected_volatile",
    "ecc_uncorrected_volatile",
    "ecc_corrected_aggregate",
    "ecc_uncorrected_aggregate",
    "retired_pages_sbe",
    "retired_pages_dbe",
    "remapped_rows_correctable",
    "remapped_rows_uncorrectable",
    "pcie_replay_count",
    "pcie_link_gen",
    "pcie_link_gen_max",
    "pcie_link_width",
    "pcie_link_width_max",
)
FLAGS = ("ecc_mode", "retired_pages_pending", "remapped_rows_pending", "remapped_rows_failure")
# The reasons bitmask under its newer and older names (dcgm-exporter and nvidia-smi renamed
# "clock throttle reasons" to "clock event reasons"); the newer one wins where both exist.
MASKS = ("clocks_event_reasons", "clock_throttle_reasons")
# NVLink error totals, per counter as GpuHealth.nvlink_errors names them; summed over series.
NVLINK = {
    "nvlink_replay_errors": "replay",
    "nvlink_recovery_errors": "recovery",
    "nvlink_crc_flit_errors": "crc_flit",
    "nvlink_crc_data_errors": "crc_data",
}
XID = "xid_last"  # the last XID the GPU reported; 0: none since the exporter started
KEYS = frozenset((*COUNTS, *FLAGS, *MASKS, *NVLINK, XID))
# What NVML's health reads every 30 s too (nvml_health.SLOW_TTL): counters and link figures
# that change rarely, and that dcgm-exporter itself collects every 30 s by default. A fleet's
# worth of them is most of a GPU exporter's series; the XID, P-state and throttle reasons stay
# in every refresh.
SLOW = KEYS - {XID, "performance_state", *MASKS}
SLOW_TTL = 30.0
SUMMED = frozenset(NVLINK)
BLANK = 2.0**62  # DCGM marks "no value" with int64 sentinels near 2**63
NOT_REMOTE = "not read through a GPU exporter"


def health(g: Mapping[str, Any], profiles: Iterable[Profile]) -> tuple[GpuHealth | None, str]:
    """One GPU's health from its merged fields; (None, why) where its exporters sent no health
    figure at all (why is "" where no profile of it maps any)."""
    profiles = list(profiles)
    if not any(k in g for k in KEYS):
        wanted = [_metric(profiles, k) for k in ("ecc_uncorrected_volatile", XID, MASKS[0])]
        names = ", ".join(m for m in wanted if m)
        return None, f"the exporter sends no GPU health metrics (enable {names})" if names else ""
    reasons: dict[str, str] = {}

    def why(field: str, *keys: str) -> None:
        metric = next((m for k in keys if (m := _metric(profiles, k))), None)
        reasons[field] = f"the exporter does not send {metric}" if metric else NOT_REMOTE

    values: dict[str, Any] = {}
    for key in COUNTS:
        if key in g:
            values[key] = int(g[key])
        else:
            why(key, key)
    for key in FLAGS:
        if key in g:
            values[key] = g[key] != 0
        else:
            why(key, key)
    mask = next((g[k] for k in MASKS if k in g), None)
    if mask is not None and 0 <= mask < 2**64:
        values["throttle_reasons"] = decode_throttle(int(mask))
    else:
        why("throttle_reasons", *MASKS)
    errors = {word: int(g[key]) for key, word in NVLINK.items() if key in g}
    if errors:
        values["nvlink_errors"] = MappingProxyType(errors)
    else:
        why("nvlink_errors", *NVLINK)
    reasons["nvlink_links"] = NOT_REMOTE
    reasons["pcie_tx_bytes_per_second"] = reasons["pcie_rx_bytes_per_second"] = NOT_REMOTE
    return GpuHealth(**values, unavailable=freeze(reasons)), ""


def _metric(profiles: list[Profile], key: str) -> str | None:
    return next((p.fields[key].metric for p in profiles if key in p.fields), None)


class XidWatch:
    """DCGM reports only the last XID, without its time: a code becomes an event when a source
    first sees it (or sees it change), and stays one while the exporter still reports it."""

    def __init__(self) -> None:
        self._kept: dict[str, HealthEvent] = {}  # by GPU UUID

    def update(self, found: Mapping[str, tuple[int, int]], now: float) -> tuple[HealthEvent, ...]:
        """``found``: GPU UUID -> (index, last XID code)."""
        # A GPU missing from this answer (a failed query) keeps its event.
        kept = {uuid: e for uuid, e in self._kept.items() if uuid not in found}
        for uuid, (index, code) in found.items():
            if code <= 0:
                continue
            old = self._kept.get(uuid)
            if old is not None and old.code == code:
                kept[uuid] = old
                continue
            info = xid_info(code)
            kept[uuid] = HealthEvent(now, uuid, index, "xid", code, info.meaning, info.severity)
        self._kept = kept
        return tuple(sorted(kept.values(), key=lambda e: (e.time, e.gpu_uuid or "")))
