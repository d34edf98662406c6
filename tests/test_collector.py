"""The collector's guarantees: bounded waits, no pile-up, stale values with their age."""

from __future__ import annotations

import shlex
import subprocess
import sys
import threading
import time

import psutil
from conftest import wait_for_exec

from vramtop.collector import Collector
from vramtop.model import GpuReading, HostReading, ProcessReading
from vramtop.sources.base import SourceError
from vramtop.sources.nvml import NvmlReading
from vramtop.sources.procs import GONE, ProcessInspector, ProcInfo


class Host:
    """A source under the test's control: it answers, fails, or hangs until released."""

    name = "host"
    hostname = "h"

    def __init__(self) -> None:
        self.mode = "ok"
        self.release = threading.Event()
        self.calls = 0

    def poll(self) -> HostReading:
        self.calls += 1
        if self.mode == "hang":
            self.release.wait(30)
        if self.mode == "fail":
            raise SourceError("the host said no")
        if self.mode == "crash":
            raise RuntimeError("boom\nwith\x1b[2J newline")
        return HostReading("h", cpu_percent=float(self.calls))


def test_hung_source_is_bounded_then_stale_and_never_piles_up():
    host = Host()
    collector = Collector(host, timeout=0.2)
    first = collector.collect()
    assert first.source("host").state == "ok" and first.host.cpu_percent == 1.0
    host.mode = "hang"
    started = time.monotonic()
    frame = collector.collect()
    assert time.monotonic() - started < 2
    status = frame.source("host")
    assert (status.state, status.detail) == ("stale", "no answer within 0.2 s")
    assert status.since == first.time and frame.host.cpu_percent == 1.0
    for _ in range(3):
        collector.collect()
    assert host.calls == 2, "a source still busy must not be asked again"
    host.mode = "ok"
    host.release.set()
    time.sleep(0.1)
    assert collector.collect().source("host").state == "ok"


def test_errors_become_status_sentences():
    host = Host()
    host.mode = "fail"
    frame = Collector(host, timeout=1).collect()
    assert (frame.source("host").state, frame.source("host").detail) == (
        "error",
        "the host said no",
    )
    assert frame.host.hostname == "h"
    host.mode = "crash"
    detail = Collector(host, timeout=1).collect().source("host").detail
    assert detail == "internal error: boom with?[2J newline"
    assert Collector(host, timeout=1).collect().source("nvml").state == "disabled"


def test_a_fleet_model_also_run_here_keeps_its_fleet_total():
    from vramtop.collector import merge_models
    from vramtop.model import InstanceFigures, ModelReading

    gib = 2**30
    served = ModelReading(
        "llama",
        30 * gib,
        latency_p95_seconds=0.5,
        by_instance=(InstanceFigures("a", 10 * gib, 0.5), InstanceFigures("b", 20 * gib)),
    )
    here = ModelReading("llama", 15 * gib, processes=(7,), gpus=(0,))
    (m,) = merge_models([here], [served], "box")
    assert m.vram_bytes == 45 * gib and m.processes == (7,)
    assert [(f.instance, f.vram_bytes) for f in m.by_instance] == [
        ("a", 10 * gib),
        ("b", 20 * gib),
        ("box", 15 * gib),
    ]
    (alone,) = merge_models([here], [ModelReading("llama", None, latency_p95_seconds=0.1)], "box")
    assert alone.vram_bytes == 15 * gib and alone.by_instance == ()


def test_one_model_from_two_readings_merges_its_replicas():
    from vramtop.collector import merge_models
    from vramtop.model import InstanceFigures, ModelReading

    def model(vram, p95, queue, *shares, rps=None, err=None):
        return ModelReading(
            "llama",
            vram,
            latency_p95_seconds=p95,
            queue_length=queue,
            requests_per_second=rps,
            error_ratio=err,
            by_instance=shares,
        )

    a = InstanceFigures("gpu-a", vram_bytes=30, latency_p95_seconds=1.5)
    b = InstanceFigures("gpu-b", vram_bytes=7, queue_length=2)
    # the same host from two profiles or sources: one replica, gaps filled, nothing added twice
    (same,) = merge_models(
        [], [model(30, 1.5, None, a), model(30, None, 4, InstanceFigures("gpu-a", queue_length=4))]
    )
    assert same.by_instance == (InstanceFigures("gpu-a", 30, 1.5, 4),)
    assert (same.vram_bytes, same.latency_p95_seconds, same.queue_length) == (30, 1.5, 4)
    # two parts of the fleet (disjoint hosts): sums, the worst latency, errors by rate
    (both,) = merge_models(
        [], [model(30, 1.5, 1, a, rps=9, err=0.1), model(7, 3.0, 2, b, rps=1, err=0.0)]
    )
    assert both.by_instance == (a, b)
    assert (both.vram_bytes, both.latency_p95_seconds, both.queue_length) == (37, 3.0, 3)
    assert both.requests_per_second == 10 and both.error_ratio == 0.09
    # this machine runs a share of it: NVML's processes join, the fleet's VRAM stays
    local = ModelReading("llama", 5, processes=(42,), gpus=(0,))
    (mixed,) = merge_models([local], [both])
    assert mixed.vram_bytes == 37 and mixed.processes == (42,)
    (alone,) = merge_models([local], [model(30, 1.5, None, a)])
    assert alone.vram_bytes == 5, "one host: NVML's exact figure for this machine wins"


def test_start_begins_the_first_poll_and_collect_joins_it():
    """The live view starts the first reads before it imports Textual; the first collect()
    takes that poll's answer instead of asking the source a second time."""
    host = Host()
    host.mode = "hang"  # the poll is still running when collect() comes
    collector = Collector(host, timeout=5)
    collector.start()
    deadline = time.monotonic() + 10
    while host.calls == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert host.calls == 1, "start() polls without waiting for collect()"
    host.mode = "ok"
    host.release.set()
    frame = collector.collect()
    assert host.calls == 1
    assert frame.source("host").state == "ok" and frame.host.cpu_percent == 1.0
    assert collector.collect().host.cpu_percent == 2.0


class Inspector(ProcessInspector):
    """The real inspector (psutil and /proc), counting the lookups of who a process is."""

    def __init__(self) -> None:
        super().__init__()
        self.described: list[int] = []

    def describe(self, pid: int) -> ProcInfo:
        self.described.append(pid)
        return super().describe(pid)


class OneProcessNvml:
    name = "nvml"

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def poll(self) -> NvmlReading:
        proc = ProcessReading(pid=self.pid, gpu_index=0, used_memory_bytes=1 << 30)
        return NvmlReading((GpuReading(0, "GPU-0", "fake", processes=(proc,)),), "1.0")


def test_a_process_is_attributed_once_per_lifetime_and_its_usage_every_refresh():
    argv = [sys.executable, "-c", "import time; time.sleep(30)", "--model", "org/m"]
    child = subprocess.Popen(argv)
    wait_for_exec(child, ["--model", "org/m"])
    try:
        inspector = Inspector()
        collector = Collector(Host(), OneProcessNvml(child.pid), inspector=inspector, timeout=10)
        frames = [collector.collect() for _ in range(3)]
        assert inspector.described == [child.pid]
        procs = [f.gpus[0].processes[0] for f in frames]
        assert {(p.model, p.model_source, p.command) for p in procs} == {
            ("org/m", "cmdline", shlex.join(argv))
        }
        assert procs[0].cpu_percent is None and procs[2].cpu_percent is not None
        assert procs[2].started_at == psutil.Process(child.pid).create_time()
    finally:
        child.kill()
        child.wait()
    gone = collector.collect().gpus[0].processes[0]
    assert inspector.described == [child.pid, child.pid]  # the pid ended: looked up again
    assert (gone.detail, gone.model, gone.command) == (GONE, None, None)


class SlowRemote:
    """A remote source that answers once released (a slow Prometheus)."""

    name = "prometheus"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0

    def poll(self) -> NvmlReading:
        self.calls += 1
        self.release.wait(30)
        return NvmlReading(driver_version=None, gpus=())


def test_the_first_collect_takes_the_polls_start_began_and_preview_shows_them():
    # The live view starts the polls before importing Textual and draws a preview of those
    # answered; its first collect must take the same answers, not poll again.
    host, remote = Host(), SlowRemote()
    collector = Collector(host, remote=[remote], timeout=5, clock=lambda: 1000.0)
    collector.start()
    collector.started["host"].result(timeout=5)
    frame, pending = collector.preview()
    assert pending == ("prometheus",)
    assert frame.source("host").state == "ok" and frame.host.cpu_percent == 1.0
    assert frame.source("prometheus") is None  # not answered: neither ok nor failed
    remote.release.set()
    first = collector.collect()
    assert (host.calls, remote.calls) == (1, 1)
    assert first.source("prometheus").state == "ok", first.source("prometheus")
    assert first.time == 1000.0
    assert collector.started == {}  # taken: the next collect polls again
    collector.collect()
    assert (host.calls, remote.calls) == (2, 2)


def test_local_first_starts_the_remote_polls_once_the_local_ones_answered():
    # The live view: Prometheus's first request (httpx's import) waits for the local panels.
    host, remote = Host(), SlowRemote()
    host.mode = "hang"
    remote.release.set()  # it would answer at once, if asked
    collector = Collector(host, remote=[remote], timeout=5, clock=lambda: 1000.0)
    collector.start(local_first=True)
    time.sleep(0.2)
    assert (host.calls, remote.calls) == (1, 0)
    assert not collector.started["prometheus"].done()
    assert collector.preview()[1] == ("host", "prometheus")
    host.release.set()  # the local answer: now the remote poll starts
    assert collector.started["prometheus"].result(timeout=5).gpus == ()
    first = collector.collect()
    assert (host.calls, remote.calls) == (1, 1)
    assert first.source("host").state == first.source("prometheus").state == "ok"


def test_local_first_with_a_failed_local_source_still_starts_the_remote_ones():
    host, remote = Host(), SlowRemote()
    host.mode = "fail"
    remote.release.set()
    collector = Collector(host, remote=[remote], timeout=5)
    collector.start(local_first=True)
    frame = collector.collect()
    assert frame.source("host").state == "error" and frame.source("prometheus").state == "ok"


class Remote:
    """A remote source (named like Prometheus, or a direct scrape) that counts its reads."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls = 0
        self.fail = False

    def poll(self):
        from vramtop.model import AlertReading
        from vramtop.sources.alerts import AlertsReading

        self.calls += 1
        if self.fail:
            raise SourceError("Prometheus is down")
        return AlertsReading((AlertReading(f"A{self.calls}", "warning", "firing"),))


def test_prometheus_is_read_once_per_remote_period_and_now_on_refresh(monkeypatch):
    import vramtop.collector as collector_module

    clock = [100.0]
    monkeypatch.setattr(collector_module.time, "monotonic", lambda: clock[0])
    prom, scrape = Remote("prometheus"), Remote("scrape")
    collector = Collector(Host(), remote=[prom, scrape], remote_every=5.0)
    names = []
    for _ in range(6):  # one refresh a second
        frame = collector.collect()
        names.append([a.name for a in frame.alerts])
        assert frame.source("prometheus").state == "ok"
        clock[0] += 1.0
    assert prom.calls == 2 and scrape.calls == 6  # at 0 s and 5 s; /metrics every time
    assert [n for n in names if "A1" in n] == [["A1", f"A{i}"] for i in (1, 2, 3, 4, 5)]
    assert names[5][0] == "A2"  # Prometheus's second answer, from the refresh at 5 s
    collector.read_remote_next()  # "r": read Prometheus now, not its answer of 1 s ago
    collector.collect()
    assert prom.calls == 3
    prom.fail = True  # a failed read is stale and tried again at the next refresh
    collector.read_remote_next()
    assert collector.collect().source("prometheus").state == "stale"
    clock[0] += 1.0
    collector.collect()
    assert prom.calls == 5
    collector.close()


def test_without_a_remote_period_prometheus_is_read_every_refresh():
    prom = Remote("prometheus")
    collector = Collector(Host(), remote=[prom])
    for _ in range(3):
        collector.collect()
    assert prom.calls == 3 and collector.remote_every == 0.0
    collector.close()
