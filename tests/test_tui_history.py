"""vramtop.history: series from Frames in fixed memory, windows, backfill merging."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from itertools import pairwise

from test_tui_support import GIB, T0, frame_at

from vramtop import history
from vramtop.history import (
    MODEL_FIELDS,
    RAW_POINTS,
    History,
    Ring,
    combine,
    combine_all,
)
from vramtop.model import Frame, HostReading, ModelReading


def test_ring_keeps_the_newest_points_in_order():
    ring = Ring(4)
    assert ring.points() == [] and ring.last(3) == [] and ring.oldest() is None
    for i in range(6):
        ring.append(float(i), i * 10.0)
    assert len(ring) == 4 and ring.full
    assert ring.points() == [(2.0, 20.0), (3.0, 30.0), (4.0, 40.0), (5.0, 50.0)]
    assert ring.points(since=4.0) == [(4.0, 40.0), (5.0, 50.0)]
    assert ring.last(2) == [40.0, 50.0] and ring.last(10) == [20.0, 30.0, 40.0, 50.0]


def test_series_per_gpu_and_every_model_field():
    h = History()
    for step in range(10):
        h.add(frame_at(step))
    assert h.latest == frame_at(9) and h.frames_added == 10
    now = frame_at(9).time
    used = h.gpu(0, "memory_used_bytes", 300, now)
    assert len(used) == 10 and used[-1] == (now, float(frame_at(9).gpus[0].memory_used_bytes))
    assert len(h.gpu(2, "utilization_percent", 300, now)) == 10
    assert h.gpu(3, "memory_used_bytes", 300, now) == []  # the lost GPU: no values, no zeros
    qwen = h.model_window("qwen-7b", 300, now)
    assert set(qwen) == set(MODEL_FIELDS)
    assert all(len(points) == 10 for points in qwen.values())
    assert h.model("mistral-7b", "latency_p95_seconds", 300, now) == []  # None is a gap
    assert h.last(("model", "qwen-7b", "queue_length"), 3) == [75.0, 75.0, 75.0]


def test_windows_pick_a_resolution_that_covers_them():
    h = History(raw_points=60)
    steps = 2 * 3600
    for step in range(steps):
        h.add(frame_at(step))
    now = frame_at(steps - 1).time
    five = h.gpu(0, "utilization_percent", 50, now)
    assert len(five) == 51  # raw: every sample, both ends included
    hour = h.gpu(0, "utilization_percent", 3600, now)
    assert 355 <= len(hour) <= 362  # 10 s means
    assert all(b[0] - a[0] == 10.0 for a, b in pairwise(hour))
    day = h.gpu(0, "utilization_percent", 86400, now)
    assert 55 <= len(day) <= 62  # 2 min means over the 2 hours there are
    # A mean, not a sample: the buckets average what fell into them.
    t, v = hour[-2]
    first = int(t - T0)
    raw = [frame_at(s).gpus[0].utilization_percent for s in range(first, first + 10)]
    assert abs(v - sum(raw) / len(raw)) < 1e-9


def _model_frame(step: int, names: list[str]) -> Frame:
    return Frame(
        time=T0 + step,
        host=HostReading("h"),
        models=tuple(ModelReading(n, GIB, latency_p95_seconds=0.1) for n in names),
    )


def test_series_count_is_capped_when_models_come_and_go():
    h = History(max_series=50)
    for step in range(200):
        h.add(_model_frame(step, [f"model-{step}"]))  # a new model every frame
    assert len(h) <= 50
    # The most recent survive.
    assert h.model("model-199", "vram_bytes", 300, T0 + 199) == [(T0 + 199, float(GIB))]
    assert h.model("model-0", "vram_bytes", 300, T0 + 199) == []


def test_series_unseen_for_a_day_are_dropped():
    h = History()
    h.add(_model_frame(0, ["old"]))
    h.add(_model_frame(90000, ["new"]))
    assert h.model("old", "vram_bytes", 86400, T0 + 90000) == []
    assert len(h) == 2  # new: vram_bytes and latency_p95_seconds


def test_memory_is_flat_however_long_it_runs():
    h = History()
    for step in range(RAW_POINTS + 50):  # every ring preallocated, raw ring full
        h.add(frame_at(step))
    frames = [frame_at(step) for step in range(RAW_POINTS + 50, RAW_POINTS + 3050)]
    only_history = [tracemalloc.Filter(True, history.__file__)]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(only_history)
        for frame in frames:
            h.add(frame)
        after = tracemalloc.take_snapshot().filter_traces(only_history)
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown < 16 * 1024, grown  # 3000 more frames: nothing kept beyond the rings


def test_backfill_fills_what_local_history_lacks():
    local = [(100.0, 1.0), (101.0, 2.0)]
    backfill = [(101.0, 9.0), (50.0, 5.0), (99.0, 6.0)]
    assert combine(backfill, local) == [(50.0, 5.0), (99.0, 6.0), (100.0, 1.0), (101.0, 2.0)]
    assert combine(backfill, []) == [(50.0, 5.0), (99.0, 6.0), (101.0, 9.0)]
    both = combine_all({"a": backfill}, {"a": local, "b": local})
    assert both["b"] == local and both["a"][0] == (50.0, 5.0)
    assert combine_all(None, {"a": local}) == {"a": local}


def test_history_does_not_import_textual():
    code = "import sys, vramtop.history; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_fleet_gpus_are_kept_by_host_and_never_crowd_out_models():
    from vramtop.model import GpuReading, HostReading, ModelReading

    history = History(max_series=20)
    for t in range(3):
        gpus = tuple(
            GpuReading(i, None, "H100", memory_used_bytes=h * 100 + i, host=f"h{h}")
            for h in range(10)
            for i in range(2)
        )
        local = GpuReading(0, None, "A100", memory_used_bytes=7)
        model = ModelReading("llama", 5, latency_p95_seconds=0.2)
        history.add(Frame(float(t), HostReading("box"), gpus=(local, *gpus), models=(model,)))
    assert len(history) == 20
    assert history.model("llama", "latency_p95_seconds", 60, 3) == [
        (0.0, 0.2),
        (1.0, 0.2),
        (2.0, 0.2),
    ]
    assert history.gpu(0, "memory_used_bytes", 60, 3) == [(0.0, 7.0), (1.0, 7.0), (2.0, 7.0)]
    assert history.gpu(1, "memory_used_bytes", 60, 3, host="h0")[-1] == (2.0, 1.0)
    assert history.has_gpu(1, "h0") and not history.has_gpu(1, "h9")  # no room: not churned in


def _one_model(step: int, vram: int | None) -> Frame:
    models = () if vram is None else (ModelReading("m", vram),)
    return Frame(time=T0 + step, host=HostReading("h"), models=models)


def test_a_series_with_gaps_keeps_its_own_points_on_the_shared_clock():
    # The model is absent from some frames and joins late: its points are its own samples,
    # at their frames' times, with no value invented for the frames it missed.
    h = History(raw_points=8)
    seen = {2: 20, 3: 30, 6: 60, 7: 70}
    for step in range(10):
        h.add(_one_model(step, seen.get(step)))
    assert h.model("m", "vram_bytes", 300, T0 + 9) == [(T0 + s, float(v)) for s, v in seen.items()]
    assert h.last(("model", "m", "vram_bytes"), 3) == [30.0, 60.0, 70.0]
    for step in range(10, 14):  # frames 2 and 3 leave the 8-frame clock
        h.add(_one_model(step, None))
    assert h.model("m", "vram_bytes", 7, T0 + 13) == [(T0 + 6, 60.0), (T0 + 7, 70.0)]
    # Further back than the clock: the 10 s means, which still have frames 2 and 3.
    assert h.model("m", "vram_bytes", 300, T0 + 13) == [(T0, 45.0)]


def test_bucket_means_skip_buckets_without_samples():
    h = History(raw_points=4)
    for step in (*range(0, 10), *range(30, 40)):  # nothing from 10 s to 30 s
        h.add(_one_model(step, 100 + step))
    for step in range(40, 44):
        h.add(_one_model(step, None))
    points = h.model("m", "vram_bytes", 3600, T0 + 43)  # past the raw ring: 10 s means
    starts = [t - T0 for t, _ in points]
    assert starts == [0.0, 30.0]
    assert [v for _, v in points] == [104.5, 134.5]


def test_a_series_costs_half_of_a_time_beside_every_value():
    tracemalloc.start()
    try:
        h = History()
        before = tracemalloc.take_snapshot()
        h.add(_model_frame(0, [f"model-{i}" for i in range(50)]))  # 100 series
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    per_series = sum(s.size_diff for s in after.compare_to(before, "filename")) / len(h)
    # Raw values (600 x 8 bytes) and the two tiers' means (1080 x 8 bytes), times not repeated:
    # about 13.4 KB; with a time beside every value it was 26.9 KB.
    assert per_series < 15_000, per_series
