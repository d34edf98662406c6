"""GPU health through the real pynvml against the fake libnvidia-ml: every field read back
exactly, the slower schedules, an old driver, unsupported GPUs, XID/ECC events delivered at
scripted times, a GPU lost while the event thread waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pynvml
from fakenvml import call_counts, reset_counts

from vramtop.demo.scenario import Event, Gpu, Process, Scenario
from vramtop.sources import nvml_pcie
from vramtop.sources.nvml import NvmlSource
from vramtop.sources.nvml_health import NO_NVLINK, SLOW_TTL
from vramtop.sources.nvml_pcie import NOT_YET

GIB = 2**30
NOT_SUPPORTED = "not supported on this GPU"
HEALTH_CALLS = (
    "nvmlDeviceGetCurrentClocksEventReasons",
    "nvmlDeviceGetPerformanceState",
    "nvmlDeviceGetFieldValues",
    "nvmlDeviceGetCurrPcieLinkGeneration",
    "nvmlDeviceGetCurrPcieLinkWidth",
    "nvmlDeviceGetProcessUtilization",
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def source(**kw: Any) -> Iterator[NvmlSource]:
    nvml = NvmlSource(**kw)
    try:
        yield nvml
    finally:
        nvml.close()


def wait_for(what: Callable[[], Any], seconds: float = 20.0) -> Any:
    """Polls until ``what()`` is truthy (a deadline, not a timing assertion)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = what()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not within {seconds} s")


SICK = Gpu(
    uuid="GPU-sick",
    utilization_gpu=93,
    clocks_event_reasons=0x4 | 0x40 | 0x200,
    performance_state=2,
    ecc_mode=1,
    ecc_sbe_volatile=11,
    ecc_dbe_volatile=2,
    ecc_sbe_aggregate=1234,
    ecc_dbe_aggregate=5,
    retired_sbe=7,
    retired_dbe=3,
    retired_pending=1,
    remapped_cor=12,
    remapped_unc=4,
    remap_pending=1,
    remap_failure=1,
    pcie_replay=77,
    pcie_gen=3,
    pcie_gen_max=5,
    pcie_width=8,
    pcie_width_max=16,
    pcie_tx_kbps=123_456,
    pcie_rx_kbps=654_321,
    nvlink_links=18,
    nvlink_replay=21,
    nvlink_recovery=22,
    nvlink_crc_flit=23,
    nvlink_crc_data=2**40 + 24,
)


def test_every_health_field_reads_back_exactly(scenario):
    scenario(Scenario(gpus=(SICK, Gpu(uuid="GPU-fine"))))
    with source() as nvml:
        sick, fine = nvml.poll().gpus
    h = sick.health
    assert h is not None
    assert h.throttle_reasons == ("sw_power_cap", "hw_thermal", "board_limit")
    assert h.performance_state == 2
    assert h.ecc_mode is True
    assert (h.ecc_corrected_volatile, h.ecc_uncorrected_volatile) == (11, 2)
    assert (h.ecc_corrected_aggregate, h.ecc_uncorrected_aggregate) == (1234, 5)
    assert (h.retired_pages_sbe, h.retired_pages_dbe, h.retired_pages_pending) == (7, 3, True)
    assert (h.remapped_rows_correctable, h.remapped_rows_uncorrectable) == (12, 4)
    assert (h.remapped_rows_pending, h.remapped_rows_failure) == (True, True)
    assert h.pcie_replay_count == 77
    assert (h.pcie_link_gen, h.pcie_link_gen_max, h.pcie_link_width, h.pcie_link_width_max) == (
        3,
        5,
        8,
        16,
    )
    assert h.nvlink_links == 18
    assert dict(h.nvlink_errors or {}) == {
        "replay": 21,
        "recovery": 22,
        "crc_flit": 23,
        "crc_data": 2**40 + 24,
    }
    # One poll is a one-shot run: no PCIe sampling thread, so no throughput, and why.
    assert h.pcie_tx_bytes_per_second is None and h.pcie_rx_bytes_per_second is None
    assert dict(h.unavailable) == {
        "pcie_tx_bytes_per_second": NOT_YET,
        "pcie_rx_bytes_per_second": NOT_YET,
    }

    f = fine.health
    assert f is not None
    assert f.throttle_reasons == () and f.performance_state == 0
    assert (f.ecc_uncorrected_volatile, f.remapped_rows_failure, f.pcie_link_width) == (
        0,
        False,
        16,
    )
    assert f.nvlink_links == f.nvlink_errors is None
    assert f.unavailable["nvlink_errors"] == f.unavailable["nvlink_links"] == NO_NVLINK


def test_a_gpu_that_supports_nothing_says_so_and_is_not_asked_again(scenario, loaded_fake):
    unsupported = dict.fromkeys(
        (
            "clocks_event_reasons",
            "performance_state",
            "ecc_mode",
            "ecc_counts",
            "retired_pages",
            "remapped_rows",
            "pcie_replay",
            "pcie_link",
            "process_utilization",
        ),
        "NOT_SUPPORTED",
    )
    gpu = Gpu(errors=unsupported, processes=(Process(4242, GIB, sm_util=50),))
    scenario(Scenario(gpus=(gpu,)))
    with source() as nvml:
        (g,) = nvml.poll().gpus
        reset_counts(loaded_fake)
        nvml.poll()
        counts = call_counts(loaded_fake)
    h = g.health
    assert h is not None
    for name in (
        "throttle_reasons",
        "performance_state",
        "ecc_mode",
        "ecc_corrected_volatile",
        "ecc_uncorrected_aggregate",
        "retired_pages_pending",
        "remapped_rows_failure",
        "pcie_replay_count",
        "pcie_link_gen",
        "pcie_link_width_max",
    ):
        assert getattr(h, name) is None, name
        assert h.unavailable[name] == NOT_SUPPORTED, name
    (p,) = g.processes
    assert p.sm_percent is None and p.memory_controller_percent is None
    assert p.unavailable["sm_percent"] == NOT_SUPPORTED
    for name in (
        "nvmlDeviceGetCurrentClocksEventReasons",
        "nvmlDeviceGetPerformanceState",
        "nvmlDeviceGetCurrPcieLinkGeneration",
        "nvmlDeviceGetProcessUtilization",
    ):
        assert counts.get(name, 0) == 0, name


def test_one_gpu_unsupported_another_fine(scenario):
    errors = {"ecc_counts": "NOT_SUPPORTED", "remapped_rows": "NO_PERMISSION"}
    scenario(Scenario(gpus=(Gpu(errors=errors, ecc_dbe_volatile=9), SICK)))
    with source() as nvml:
        bad, good = nvml.poll().gpus
    assert bad.health is not None and good.health is not None
    assert bad.health.ecc_uncorrected_volatile is None
    assert bad.health.unavailable["ecc_uncorrected_volatile"] == NOT_SUPPORTED
    assert bad.health.unavailable["remapped_rows_pending"] == "no permission to read it (NVML)"
    assert bad.health.ecc_mode is True and bad.health.pcie_replay_count == 0
    assert good.health.ecc_uncorrected_volatile == 2 and good.health.remapped_rows_failure


def test_an_old_driver_without_functions(scenario, loaded_fake):
    missing = (
        "nvmlDeviceGetCurrentClocksEventReasons",  # before 535: the older name still answers
        "nvmlDeviceGetFieldValues",
        "nvmlDeviceGetPerformanceState",
        "nvmlDeviceGetProcessUtilization",
        "nvmlEventSetCreate",
    )
    gpu = Gpu(clocks_event_reasons=0x20, processes=(Process(4242, GIB, sm_util=50),))
    scenario(Scenario(gpus=(gpu,), missing_functions=missing))
    with source() as nvml:
        (g,) = nvml.poll().gpus
        reset_counts(loaded_fake)
        second = nvml.poll()
        counts = call_counts(loaded_fake)
        note = wait_for(lambda: nvml.poll().events_note)
    h = g.health
    assert h is not None
    assert h.throttle_reasons == ("sw_thermal",)
    assert h.performance_state is None
    assert h.unavailable["performance_state"] == "driver too old for nvmlDeviceGetPerformanceState"
    for name in ("ecc_mode", "ecc_uncorrected_volatile", "remapped_rows_failure", "nvlink_errors"):
        assert h.unavailable[name] == "driver too old for nvmlDeviceGetFieldValues", name
    (p,) = g.processes
    assert p.unavailable["sm_percent"] == "driver too old for nvmlDeviceGetProcessUtilization"
    assert second.gpus[0].health == h  # the same answer, without asking again
    for name in missing[:4]:
        assert counts.get(name, 0) == 0, name
    assert counts["nvmlDeviceGetCurrentClocksThrottleReasons"] == 1
    assert note == "events not watched: driver too old for nvmlEventSetCreate"


def test_no_clock_event_reasons_at_all(scenario):
    missing = (
        "nvmlDeviceGetCurrentClocksEventReasons",
        "nvmlDeviceGetCurrentClocksThrottleReasons",
    )
    scenario(Scenario(gpus=(Gpu(),), missing_functions=missing))
    with source() as nvml:
        (g,) = nvml.poll().gpus
    assert g.health is not None and g.health.throttle_reasons is None
    assert g.health.unavailable["throttle_reasons"] == "driver too old for clock event reasons"


class OldBindings:
    """pynvml from before a function existed: the attribute is simply not there."""

    def __init__(self, *hidden: str) -> None:
        self._hidden = hidden

    def __getattr__(self, name: str) -> Any:
        if name in self._hidden:
            raise AttributeError(name)
        return getattr(pynvml, name)


def test_bindings_older_than_the_function(scenario, loaded_fake):
    scenario(Scenario(gpus=(Gpu(clocks_event_reasons=0x8),)))
    old = OldBindings("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetPcieThroughput")
    with source(backend=old) as nvml:
        (g,) = nvml.poll().gpus
    assert g.health is not None and g.health.throttle_reasons == ("hw_slowdown",)


def test_slow_counters_on_their_own_schedule_fast_ones_every_refresh(scenario, loaded_fake):
    clock = Clock()
    path = scenario(Scenario(gpus=(Gpu(ecc_sbe_volatile=1),)))
    with source(clock=clock) as nvml:
        nvml.poll()
        reset_counts(loaded_fake)
        Scenario(gpus=(Gpu(ecc_sbe_volatile=2, clocks_event_reasons=0x4),)).write(path)
        clock.now += SLOW_TTL / 3
        (g,) = nvml.poll().gpus
        assert g.health is not None
        assert g.health.throttle_reasons == ("sw_power_cap",)  # every refresh
        assert g.health.ecc_corrected_volatile == 1  # not yet re-read
        clock.now += SLOW_TTL
        (g,) = nvml.poll().gpus
        assert g.health is not None and g.health.ecc_corrected_volatile == 2
        counts = call_counts(loaded_fake)
    assert counts["nvmlDeviceGetFieldValues"] == 1
    assert counts["nvmlDeviceGetCurrPcieLinkWidth"] == 1  # a degraded link stays degraded
    assert counts["nvmlDeviceGetCurrPcieLinkGeneration"] == 2  # it drops at idle
    assert counts["nvmlDeviceGetCurrentClocksEventReasons"] == 2
    # Link maxima are read once, with the static fields.
    assert counts.get("nvmlDeviceGetMaxPcieLinkGeneration", 0) == 0


def test_per_process_sm_and_memory_controller_use(scenario):
    procs = (
        Process(4242, GIB, sm_util=55, mem_util=12),
        Process(4343, GIB),  # no sample: idle since the last look
        Process(4444, GIB, sm_util=100, mem_util=100),
    )
    path = scenario(Scenario(gpus=(Gpu(processes=procs),)))
    with source() as nvml:
        (g,) = nvml.poll().gpus
        use = {p.pid: (p.sm_percent, p.memory_controller_percent) for p in g.processes}
        assert use == {4242: (55.0, 12.0), 4343: (0.0, 0.0), 4444: (100.0, 100.0)}
        # Asked again with the last-seen timestamp: no newer samples, every process idle.
        (g,) = nvml.poll().gpus
        assert {p.sm_percent for p in g.processes} == {0.0}
        Scenario(gpus=(Gpu(processes=(Process(4343, GIB, sm_util=7, mem_util=3),)),)).write(path)
        (g,) = nvml.poll().gpus
        assert [(p.pid, p.sm_percent, p.memory_controller_percent) for p in g.processes] == [
            (4343, 7.0, 3.0)
        ]


def test_a_one_shot_run_starts_no_thread(scenario):
    scenario(Scenario(gpus=(Gpu(),)))
    before = {t.name for t in threading.enumerate()}
    with source() as nvml:
        nvml.poll()
        started = {t.name for t in threading.enumerate()} - before
    assert started == set()


def test_pcie_throughput_is_sampled_off_the_refresh_path(scenario):
    gpu = Gpu(pcie_tx_kbps=1000, pcie_rx_kbps=250_000)
    scenario(Scenario(gpus=(gpu, Gpu(errors={"pcie_throughput": "NOT_SUPPORTED"}))))
    before = set(threading.enumerate())  # other tests' threads may linger
    with source() as nvml:
        nvml.poll()
        nvml.poll()  # starts the sampler

        def sampled() -> Any:
            a, b = nvml.poll().gpus
            return (a, b) if a.health and a.health.pcie_tx_bytes_per_second is not None else None

        a, b = wait_for(sampled)
        mine = set(threading.enumerate()) - before
        threads = [t for t in mine if t.name == "vramtop-pcie"]
    assert a.health.pcie_tx_bytes_per_second == 1000 * 1024
    assert a.health.pcie_rx_bytes_per_second == 250_000 * 1024
    assert "pcie_tx_bytes_per_second" not in a.health.unavailable
    assert b.health is not None and b.health.pcie_tx_bytes_per_second is None
    assert b.health.unavailable["pcie_rx_bytes_per_second"] == NOT_SUPPORTED
    # close() stopped it (its join may time out on a loaded machine; the thread still ends)
    wait_for(lambda: all(not t.is_alive() for t in threads))


def test_pcie_sampling_waits_for_a_refresh_to_ask(scenario, loaded_fake, monkeypatch):
    """A round of PCIe samples starts only once a refresh read the last one: a paused screen
    (refreshes every 30 s) does not keep the sampler going on its own clock."""
    monkeypatch.setattr(nvml_pcie.PcieSampler.__init__, "__defaults__", (0.2,))  # PERIOD
    scenario(Scenario(gpus=(Gpu(pcie_tx_kbps=1000),)))

    def samples() -> int:
        return call_counts(loaded_fake)["nvmlDeviceGetPcieThroughput"]

    with source() as nvml:
        nvml.poll()
        nvml.poll()  # starts the sampler
        wait_for(lambda: nvml.poll().gpus[0].health.pcie_tx_bytes_per_second is not None)
        time.sleep(1.0)  # five periods: the round the last poll asked for has run
        asked = samples()
        time.sleep(1.0)  # five more, and no refresh asked
        assert samples() == asked
        nvml.poll()
        wait_for(lambda: samples() > asked)  # the next round, once asked


def test_xid_and_ecc_events_arrive_with_their_meaning(scenario):
    events = (
        Event(at_ms=100, gpu=1, type="xid", data=79),
        Event(at_ms=150, gpu=0, type="dbe"),
        Event(at_ms=200, gpu=0, type="xid", data=13),
        Event(at_ms=250, gpu=0, type="sbe"),
        Event(at_ms=300, gpu=1, type="xid", data=999),
    )
    scenario(Scenario(gpus=(Gpu(uuid="GPU-zero"), Gpu(uuid="GPU-one")), events=events))
    before = set(threading.enumerate())  # other tests' threads may linger
    with source() as nvml:
        nvml.poll()
        nvml.poll()
        got = wait_for(lambda: (r := nvml.poll().events) and len(r) == 5 and r)
        mine = set(threading.enumerate()) - before
        threads = [t for t in mine if t.name == "vramtop-events"]
    assert [(e.gpu_index, e.gpu_uuid, e.kind, e.code, e.meaning, e.severity) for e in got] == [
        (1, "GPU-one", "xid", 79, "GPU has fallen off the bus", "critical"),
        (0, "GPU-zero", "ecc_dbe", None, "double-bit ECC error (uncorrectable)", "critical"),
        (0, "GPU-zero", "xid", 13, "graphics engine exception", "warning"),
        (0, "GPU-zero", "ecc_sbe", None, "single-bit ECC error (corrected)", "info"),
        (1, "GPU-one", "xid", 999, "XID 999", "warning"),
    ]
    assert all(e.time > 1e9 for e in got)
    wait_for(lambda: all(not t.is_alive() for t in threads))  # close() stopped it


def test_a_gpu_lost_while_the_thread_waits(scenario):
    events = (
        Event(at_ms=100, gpu=1, type="xid", data=79),
        Event(at_ms=300, gpu=1, type="lost"),
        Event(at_ms=1500, gpu=0, type="xid", data=13),  # after the loss: still watched
    )
    scenario(Scenario(gpus=(Gpu(uuid="GPU-zero"), Gpu(uuid="GPU-one")), events=events))
    with source() as nvml:
        nvml.poll()
        nvml.poll()
        got = wait_for(lambda: (r := nvml.poll().events) and len(r) >= 3 and r)
        reading = nvml.poll()
    assert [(e.gpu_index, e.kind, e.code) for e in got] == [
        (1, "xid", 79),
        (1, "gpu_lost", None),
        (0, "xid", 13),
    ]
    assert got[1].severity == "critical" and got[1].gpu_uuid == "GPU-one"
    assert [g.state for g in reading.gpus] == ["ok", "lost"]
    assert len(reading.events) == 3  # the poll saw the loss too, and did not say it twice


def test_a_gpu_lost_between_polls_is_an_event_without_the_thread(scenario):
    path = scenario(Scenario(gpus=(Gpu(uuid="GPU-zero"),)))
    with source() as nvml:
        nvml.poll()
        Scenario(gpus=(Gpu(uuid="GPU-zero", lost=True),)).write(path)
        first = nvml.poll()
        again = nvml.poll()
    assert first.gpus[0].state == "lost" and first.gpus[0].health is None
    assert [(e.kind, e.gpu_uuid) for e in first.events] == [("gpu_lost", "GPU-zero")]
    assert again.events == first.events


def test_gpus_without_events(scenario):
    scenario(Scenario(gpus=(Gpu(supported_events=0x4), Gpu(errors={"events": "NOT_SUPPORTED"}))))
    with source() as nvml:
        nvml.poll()
        note = wait_for(lambda: nvml.poll().events_note)
    assert note == "events not watched: no GPU here reports XID or ECC events"
