"""GPU health of remote GPUs through a real Prometheus: a static DCGM exporter and a static
nvidia_gpu_exporter with planted values, read back exactly into GpuHealth, the last XID as a
health event, and the JSON export of a real ``vramtop --once --prometheus``."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jsonschema
import pytest
from promstack import Prometheus, StaticExposition

from vramtop.health import finding
from vramtop.profiles import load_all
from vramtop.sources.http import Endpoint
from vramtop.sources.promql import PromReading, PromSource
from vramtop.sources.remote_health import NOT_REMOTE
from vramtop.sources.scrape import ScrapeSource

SCHEMA = json.loads(
    (Path(__file__).parent.parent / "vramtop/schemas/vramtop-1.schema.json").read_text()
)


def dcgm_line(metric: str, gpu: int, uuid: str, value: float | str, extra: str = "") -> str:
    labels = f'gpu="{gpu}",UUID="{uuid}",modelName="NVIDIA H100 80GB HBM3",Hostname="node-7"'
    return f"{metric}{{{labels}{extra}}} {value}"


def dcgm_text() -> str:
    """GPU 0: every health counter, the newer reasons name; GPU 1: the older name, an XID
    with dcgm-exporter's err_code/err_msg labels, per-link NVLink series and a blank value."""
    a, b = "GPU-dcgm-0000", "GPU-dcgm-0001"
    lines = []
    for gpu, uuid in ((0, a), (1, b)):
        lines += [
            dcgm_line("DCGM_FI_DEV_FB_USED", gpu, uuid, 1000),
            dcgm_line("DCGM_FI_DEV_FB_FREE", gpu, uuid, 80000),
            dcgm_line("DCGM_FI_DEV_GPU_UTIL", gpu, uuid, 95),
        ]
    lines += [
        dcgm_line("DCGM_FI_DEV_XID_ERRORS", 0, a, 0),
        dcgm_line("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", 0, a, 0x4 | 0x20),
        dcgm_line("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", 0, a, 0x1),  # the newer name wins
        dcgm_line("DCGM_FI_DEV_PSTATE", 0, a, 0),
        dcgm_line("DCGM_FI_DEV_ECC_CURRENT", 0, a, 1),
        dcgm_line("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", 0, a, 17),
        dcgm_line("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", 0, a, 0),
        dcgm_line("DCGM_FI_DEV_ECC_SBE_AGG_TOTAL", 0, a, 4096),
        dcgm_line("DCGM_FI_DEV_ECC_DBE_AGG_TOTAL", 0, a, 3),
        dcgm_line("DCGM_FI_DEV_RETIRED_SBE", 0, a, 0),
        dcgm_line("DCGM_FI_DEV_RETIRED_DBE", 0, a, 0),
        dcgm_line("DCGM_FI_DEV_RETIRED_PENDING", 0, a, 0),
        dcgm_line("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", 0, a, 6),
        dcgm_line("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", 0, a, 1),
        dcgm_line("DCGM_FI_DEV_ROW_REMAP_PENDING", 0, a, 1),
        dcgm_line("DCGM_FI_DEV_ROW_REMAP_FAILURE", 0, a, 0),
        dcgm_line("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", 0, a, 321),
        dcgm_line("DCGM_FI_DEV_PCIE_LINK_GEN", 0, a, 5),
        dcgm_line("DCGM_FI_DEV_PCIE_MAX_LINK_GEN", 0, a, 5),
        dcgm_line("DCGM_FI_DEV_PCIE_LINK_WIDTH", 0, a, 16),
        dcgm_line("DCGM_FI_DEV_PCIE_MAX_LINK_WIDTH", 0, a, 16),
        dcgm_line("DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL", 0, a, 2),
        dcgm_line("DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL", 0, a, 0),
        dcgm_line("DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", 0, a, 9),
        dcgm_line("DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL", 0, a, 1),
        # GPU 1: the release-default counters only, plus the older reasons name
        dcgm_line("DCGM_FI_DEV_XID_ERRORS", 1, b, 79, ',err_code="79",err_msg="fell off"'),
        dcgm_line("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", 1, b, 0x8 | 0x80),
        dcgm_line("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", 1, b, 0),
        dcgm_line("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", 1, b, 0),
        dcgm_line("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", 1, b, 0),
        dcgm_line("DCGM_FI_DEV_ROW_REMAP_FAILURE", 1, b, 1),
        dcgm_line("DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", 1, b, 4, ',link="0"'),
        dcgm_line("DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL", 1, b, 5, ',link="1"'),
        dcgm_line("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", 1, b, 9223372036854775794),  # DCGM blank
    ]
    return "\n".join(lines) + "\n"


SMI_UUID = "0a0b0c0d-0000-1111-2222-333344445555"


def smi_text() -> str:
    lab = f'uuid="{SMI_UUID}",name="NVIDIA A100-SXM4-80GB"'
    values = {
        "nvidia_smi_index": 0,
        "nvidia_smi_memory_used_bytes": 2**30,
        "nvidia_smi_memory_total_bytes": 80 * 2**30,
        "nvidia_smi_clocks_throttle_reasons_active": 0x40,
        "nvidia_smi_pstate": 2,
        "nvidia_smi_ecc_mode_current": 1,
        "nvidia_smi_ecc_errors_corrected_volatile_total": 5,
        "nvidia_smi_ecc_errors_uncorrected_volatile_total": 1,
        "nvidia_smi_ecc_errors_corrected_aggregate_total": 50,
        "nvidia_smi_ecc_errors_uncorrected_aggregate_total": 2,
        "nvidia_smi_retired_pages_single_bit_ecc_count": 0,
        "nvidia_smi_retired_pages_double_bit_count": 0,
        "nvidia_smi_retired_pages_pending": 0,
        "nvidia_smi_pcie_link_gen_current": 4,
        "nvidia_smi_pcie_link_gen_max": 4,
        "nvidia_smi_pcie_link_width_current": 8,
        "nvidia_smi_pcie_link_width_max": 16,
    }
    return "".join(f"{k}{{{lab}}} {v}\n" for k, v in values.items())


@dataclass
class Exporters:
    prom: Prometheus
    dcgm: str  # instance addresses
    smi: str

    def poll(self, profile: str, instance: str) -> PromReading:
        profiles = load_all()
        src = PromSource(Endpoint(self.prom.url), [profiles[profile]], True, instance, "5s")
        try:
            return src.poll()
        finally:
            src.close()


@pytest.fixture(scope="module")
def exporters(prometheus: Prometheus) -> Iterator[Exporters]:
    dcgm, smi = StaticExposition(dcgm_text()), StaticExposition(smi_text())
    targets = [prometheus.add_target(dcgm.address, "dcgm-health")]
    targets.append(prometheus.add_target(smi.address, "smi-health"))
    for t in targets:
        prometheus.wait_until_scraped(t)
    yield Exporters(prometheus, dcgm.address, smi.address)
    for t in targets:
        t.remove()
    dcgm.stop()
    smi.stop()


def test_dcgm_health_reads_back_exactly(exporters):
    r = exporters.poll("dcgm", exporters.dcgm)
    full, lean = r.gpus
    h = full.health
    assert h is not None
    assert h.throttle_reasons == ("sw_power_cap", "sw_thermal")
    assert (h.performance_state, h.ecc_mode) == (0, True)
    assert (h.ecc_corrected_volatile, h.ecc_uncorrected_volatile) == (17, 0)
    assert (h.ecc_corrected_aggregate, h.ecc_uncorrected_aggregate) == (4096, 3)
    assert (h.retired_pages_sbe, h.retired_pages_dbe, h.retired_pages_pending) == (0, 0, False)
    assert (h.remapped_rows_correctable, h.remapped_rows_uncorrectable) == (6, 1)
    assert (h.remapped_rows_pending, h.remapped_rows_failure) == (True, False)
    assert h.pcie_replay_count == 321
    assert (h.pcie_link_gen, h.pcie_link_gen_max, h.pcie_link_width, h.pcie_link_width_max) == (
        5,
        5,
        16,
        16,
    )
    assert dict(h.nvlink_errors or {}) == {"replay": 2, "recovery": 0, "crc_flit": 9, "crc_data": 1}
    assert dict(h.unavailable) == {
        "nvlink_links": NOT_REMOTE,
        "pcie_tx_bytes_per_second": NOT_REMOTE,
        "pcie_rx_bytes_per_second": NOT_REMOTE,
    }
    assert finding(full, r.events) == ("remap pending", "warning")

    g = lean.health
    assert g is not None
    assert g.throttle_reasons == ("hw_slowdown", "hw_power_brake")  # the older name
    assert g.remapped_rows_failure is True and g.pcie_replay_count == 0
    assert dict(g.nvlink_errors or {}) == {"crc_flit": 9}  # two links summed
    # Not exported (or DCGM's blank sentinel): null, naming the counter to enable.
    assert g.ecc_corrected_volatile is None
    assert g.unavailable["ecc_corrected_volatile"] == (
        "the exporter does not send DCGM_FI_DEV_ECC_SBE_VOL_TOTAL"
    )
    assert g.unavailable["remapped_rows_pending"] == (
        "the exporter does not send DCGM_FI_DEV_ROW_REMAP_PENDING"
    )
    (xid,) = r.events
    assert (xid.gpu_uuid, xid.gpu_index, xid.kind, xid.code, xid.severity) == (
        "GPU-dcgm-0001",
        1,
        "xid",
        79,
        "critical",
    )
    assert xid.meaning == "GPU has fallen off the bus"
    assert finding(lean, r.events) == ("XID 79", "critical")


def test_the_last_xid_is_one_event_across_refreshes(exporters):
    profiles = load_all()
    t0 = time.time()  # also the queries' evaluation time
    clock = iter([t0, t0 + 2])
    src = PromSource(
        Endpoint(exporters.prom.url),
        [profiles["dcgm"]],
        True,
        exporters.dcgm,
        "5s",
        clock=lambda: next(clock),
    )
    try:
        first, second = src.poll(), src.poll()
    finally:
        src.close()
    assert first.events == second.events and [e.time for e in second.events] == [t0]


def test_nvidia_gpu_exporter_health_reads_back_exactly(exporters):
    (g,) = exporters.poll("nvidia_gpu_exporter", exporters.smi).gpus
    h = g.health
    assert g.uuid == "GPU-" + SMI_UUID and h is not None
    assert h.throttle_reasons == ("hw_thermal",) and h.performance_state == 2
    assert (h.ecc_mode, h.ecc_corrected_volatile, h.ecc_uncorrected_volatile) == (True, 5, 1)
    assert (h.ecc_corrected_aggregate, h.ecc_uncorrected_aggregate) == (50, 2)
    assert (h.retired_pages_sbe, h.retired_pages_dbe, h.retired_pages_pending) == (0, 0, False)
    assert (h.pcie_link_gen, h.pcie_link_gen_max, h.pcie_link_width, h.pcie_link_width_max) == (
        4,
        4,
        8,
        16,
    )
    assert h.remapped_rows_failure is None and h.nvlink_errors is None
    assert h.unavailable["remapped_rows_failure"] == NOT_REMOTE
    assert finding(g) == ("ECC DBE", "critical")


def test_a_gpu_exporter_without_health_metrics_says_what_to_enable(fleet_free_dcgm):
    (g,) = fleet_free_dcgm.gpus
    assert g.health is None
    assert g.unavailable["health"] == (
        "the exporter sends no GPU health metrics (enable DCGM_FI_DEV_ECC_DBE_VOL_TOTAL, "
        "DCGM_FI_DEV_XID_ERRORS, DCGM_FI_DEV_CLOCKS_EVENT_REASONS)"
    )


@pytest.fixture
def fleet_free_dcgm(prometheus: Prometheus) -> Iterator[PromReading]:
    bare = StaticExposition(dcgm_line("DCGM_FI_DEV_FB_USED", 0, "GPU-bare", 5) + "\n")
    target = prometheus.add_target(bare.address, "dcgm-bare")
    try:
        prometheus.wait_until_scraped(target)
        profiles = load_all()
        src = PromSource(Endpoint(prometheus.url), [profiles["dcgm"]], True, bare.address, "5s")
        try:
            yield src.poll()
        finally:
            src.close()
    finally:
        target.remove()
        bare.stop()


def test_json_export_of_remote_health(exporters, run_vramtop):
    out = run_vramtop(
        "--once",
        "--format",
        "json",
        "--prometheus",
        exporters.prom.url,
        "--instance",
        exporters.dcgm.replace(".", "\\."),
        "--profile",
        "dcgm",
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    jsonschema.validate(doc, SCHEMA)
    by_uuid = {g["uuid"]: g for g in doc["gpus"]}
    full, lean = by_uuid["GPU-dcgm-0000"]["health"], by_uuid["GPU-dcgm-0001"]["health"]
    assert (full["finding"], full["severity"]) == ("remap pending", "warning")
    assert full["ecc_corrected_aggregate"] == 4096 and full["pcie_replay_count"] == 321
    assert full["throttle_reasons"] == ["sw_power_cap", "sw_thermal"]
    assert full["nvlink_errors"] == {"replay": 2, "recovery": 0, "crc_flit": 9, "crc_data": 1}
    assert (lean["finding"], lean["severity"]) == ("XID 79", "critical")
    assert lean["ecc_corrected_volatile"] is None
    assert lean["unavailable"]["ecc_corrected_volatile"].endswith("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL")
    (event,) = doc["events"]
    assert {k: event[k] for k in ("gpu_uuid", "gpu_index", "kind", "code", "severity")} == {
        "gpu_uuid": "GPU-dcgm-0001",
        "gpu_index": 1,
        "kind": "xid",
        "code": 79,
        "severity": "critical",
    }
    # Critical findings are alerts from the nvml source, here for a remote GPU.
    nvml = sorted((a["name"], a["labels"]["uuid"]) for a in doc["alerts"] if a["source"] == "nvml")
    assert nvml == [("GpuRowRemapFailure", "GPU-dcgm-0001"), ("GpuXid", "GPU-dcgm-0001")]


def test_the_scrape_path_reads_the_same_health_and_xid(exporters):
    src = ScrapeSource(
        [Endpoint(f"http://{exporters.dcgm}/metrics")], [load_all()["dcgm"]], True, first_gap=0.1
    )
    try:
        scraped = src.poll()
    finally:
        src.close()
    through_prometheus = exporters.poll("dcgm", exporters.dcgm)
    assert [g.health for g in scraped.gpus] == [g.health for g in through_prometheus.gpus]
    (xid,) = scraped.events
    assert (xid.gpu_uuid, xid.code, xid.severity) == ("GPU-dcgm-0001", 79, "critical")
