"""The fleet view of a Frame: host keys, one row per host worst first, a Frame scoped to a host."""

from dataclasses import replace
from types import MappingProxyType

import pytest

from vramtop.fleet import host_key, host_rows, scope
from vramtop.model import (
    AlertReading,
    Frame,
    GpuReading,
    HostReading,
    InstanceFigures,
    ModelReading,
)


@pytest.mark.parametrize(
    ("instance", "key"),
    [
        ("10.0.0.5:8000", "10.0.0.5"),
        ("gpu-a:19400", "gpu-a"),
        ("[::1]:9100", "::1"),
        ("::1", "::1"),
        ("gpu-a", "gpu-a"),
        ("https://user:secret@gpu-b:19400/metrics", "gpu-b"),
        ("", None),
    ],
)
def test_a_host_key_is_the_instance_without_its_port(instance, key):
    assert host_key(instance) == key


def _fleet() -> Frame:
    def gpu(host, index, used, util):
        return GpuReading(
            index,
            f"GPU-{host}-{index}",
            "H100",
            memory_used_bytes=used,
            memory_total_bytes=80 * 2**30,
            utilization_percent=util,
            host=host,
        )

    llama = ModelReading(
        "llama",
        30 * 2**30,
        instances=("a:8000", "b:8000"),
        by_instance=(
            InstanceFigures("a", 10 * 2**30, 0.05, 1, 4.0),
            InstanceFigures("b", 20 * 2**30, 0.30, 9, 2.0),
        ),
    )
    return Frame(
        time=1000.0,
        host=HostReading("laptop"),
        hosts=(
            HostReading("a:9100", instance="a", up=True),
            HostReading("c:19400", instance="c", up=False, detail="connection refused"),
        ),
        gpus=(
            gpu("a", 0, 10 * 2**30, 40.0),
            gpu("b", 0, 20 * 2**30, 90.0),
            gpu("b", 1, 2**30, 10.0),
        ),
        models=(llama,),
        alerts=(
            AlertReading(
                "Slow", "warning", "firing", labels=MappingProxyType({"instance": "b:8000"})
            ),
        ),
    )


def test_rows_cover_every_host_worst_first():
    rows = host_rows(_fleet())
    assert [r.instance for r in rows] == ["c", "b", "a"]  # down, then firing alerts
    c, b, a = rows
    assert not c.up and c.detail == "connection refused" and c.gpu_count == 0
    assert b.gpu_count == 2 and b.gpu_memory_used_bytes == 21 * 2**30
    assert b.gpu_memory_total_bytes == 160 * 2**30
    assert b.utilization_mean_percent == 50.0 and b.utilization_max_percent == 90.0
    assert b.models == ("llama",) and b.alerts_firing == 1
    assert b.worst_p95.value == 0.30 and b.worst_p95.ratio == pytest.approx(3.0)
    assert b.over_target and not a.over_target
    assert b.longest_queue.value == 9
    assert "laptop" not in [r.instance for r in rows]  # no GPUs here: not a fleet host


def test_each_model_is_held_to_its_own_p95_target():
    from vramtop.config import Targets

    frame = _fleet()
    qwen = ModelReading(
        "qwen", 2**30, instances=("a:8000",), by_instance=(InstanceFigures("a", 2**30, 0.08),)
    )
    frame = replace(frame, models=(*frame.models, qwen))
    # llama may take 1 s, qwen the default 50 ms: on a, qwen's 80 ms is worse than llama's 50 ms
    targets = Targets(inference_p95_seconds=0.05, model_p95_seconds=(("ll*", 1.0),))
    rows = {r.instance: r for r in host_rows(frame, targets.p95_for)}
    assert (rows["a"].worst_p95.model, rows["a"].worst_p95.ratio) == ("qwen", pytest.approx(1.6))
    assert (rows["b"].worst_p95.model, rows["b"].worst_p95.ratio) == ("llama", pytest.approx(0.3))
    assert rows["a"].over_target and not rows["b"].over_target
    # no target: the slowest is the worst
    assert {r.instance: r for r in host_rows(frame, None)}["a"].worst_p95.model == "qwen"
    assert {r.instance: r for r in host_rows(frame, None)}["b"].worst_p95.ratio is None


def test_a_scoped_frame_holds_one_replica():
    frame = scope(_fleet(), "b")
    assert [(g.host, g.index) for g in frame.gpus] == [("b", 0), ("b", 1)]
    (m,) = frame.models
    assert m.vram_bytes == 20 * 2**30 and m.latency_p95_seconds == 0.30
    assert m.queue_length == 9 and m.requests_per_second == 2.0
    assert m.latency_p99_seconds is None and "fleet-wide" in m.unavailable["latency_p99_seconds"]
    assert [a.name for a in frame.alerts] == ["Slow"]
    assert frame.host.hostname == "b"


def test_a_single_machine_is_one_local_row():
    frame = Frame(
        time=5.0,
        host=HostReading("box"),
        gpus=(GpuReading(0, "GPU-1", "A100", memory_used_bytes=1, memory_total_bytes=2),),
    )
    (row,) = host_rows(frame)
    assert row.local and row.up and row.instance == "box" and row.gpu_count == 1


def test_a_remote_replica_carries_none_of_this_machines_processes():
    frame = _fleet()
    llama = frame.models[0]
    here = ModelReading(
        "llama",
        5,
        processes=(7,),
        gpus=(3,),
        sources=("cmdline",),
        by_instance=(*llama.by_instance, InstanceFigures("laptop", 5)),
    )
    frame = Frame(time=1.0, host=frame.host, models=(here,), gpus=frame.gpus)
    (remote,) = scope(frame, "a").models
    assert (remote.processes, remote.gpus, remote.sources) == ((), (), ())
    (local,) = scope(frame, "laptop").models
    assert (local.processes, local.gpus, local.vram_bytes) == ((7,), (3,), 5)
