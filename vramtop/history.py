"""Recent Frames as numeric series for sparklines and charts, in a fixed amount of memory.

Pure Python, no Textual. Every series keeps three rings, each preallocated at its full size so
memory stays flat however long vramtop runs:

- every sample, as collected, over the last ``RAW_POINTS`` Frames (10 minutes at 1 s); the
  Frames' times are kept once for all series;
- 10 s means over the last hour;
- 2 min means over the last 24 hours (a bucket's time follows from the newest one's).

Values stay float64 (a bucket mean is exact to the tests' 1e-9); what halves the memory is not
keeping a time beside every value.

A GPU's throttling is kept as one 0/1 series per band (``THROTTLE_BANDS``), made the first
time the band is seen, so a bucket's mean is the share of it spent throttled and a GPU that
never throttles costs nothing. A query for a window takes the finest ring that still covers
it. The number of series is capped too (``max_series``): models come and go, and one unseen
for the longest window, or the least recently updated when the cap is hit, is dropped.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping, Sequence

from vramtop.model import MODEL_FIGURES, Frame
from vramtop.serving import HISTORY_KEYS

Point = tuple[float, float]
SeriesKey = tuple[str, str, str]  # ("gpu", "0" or "host/0", field) or ("model", name, field)

GPU_FIELDS = ("memory_used_bytes", "utilization_percent")
# Throttle bands charted over utilisation: name -> the clock event reasons (GpuHealth words).
THROTTLE_BANDS: tuple[tuple[str, frozenset[str]], ...] = (
    ("hw-slow", frozenset({"hw_slowdown"})),
    ("pwr-brake", frozenset({"hw_power_brake"})),
    ("thermal", frozenset({"hw_thermal", "sw_thermal"})),
    ("pwr-cap", frozenset({"sw_power_cap"})),
)
MODEL_FIELDS = MODEL_FIGURES
SERVING_FIELDS = HISTORY_KEYS  # from ModelReading.extras, under the same names
RAW_POINTS = 600
TIERS = ((10.0, 360), (120.0, 720))  # (bucket seconds, buckets kept): 1 h and 24 h
LONGEST_WINDOW = 24 * 3600.0
MAX_SERIES = 256


def gpu_key(index: int, host: str | None = None) -> str:
    """This machine's GPU by its index; a fleet host's as ``host/index`` (indices repeat)."""
    return str(index) if host is None else f"{host}/{index}"


class Ring:
    """A fixed-size ring of (time, value) pairs held in two preallocated float arrays."""

    __slots__ = ("_next", "_size", "_times", "_values", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._times = array("d", bytes(8 * capacity))
        self._values = array("d", bytes(8 * capacity))
        self._next = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, t: float, v: float) -> None:
        self._times[self._next] = t
        self._values[self._next] = v
        self._next = (self._next + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    @property
    def full(self) -> bool:
        return self._size == self.capacity

    def oldest(self) -> float | None:
        if not self._size:
            return None
        return self._times[(self._next - self._size) % self.capacity]

    def points(self, since: float = float("-inf")) -> list[Point]:
        """Oldest first, only those at or after ``since``."""
        out: list[Point] = []
        cap, times, values = self.capacity, self._times, self._values
        i = (self._next - 1) % cap
        for _ in range(self._size):
            t = times[i]
            if t < since:
                break
            out.append((t, values[i]))
            i = (i - 1) % cap
        out.reverse()
        return out

    def last(self, n: int) -> list[float]:
        n = min(n, self._size)
        cap = self.capacity
        return [self._values[(self._next - n + k) % cap] for k in range(n)]


NAN = float("nan")


class _Clock:
    """The times of the last ``capacity`` Frames a History was given, shared by every series:
    frame ``n`` sits at slot ``n % capacity`` of each series' raw values, so a series keeps its
    values alone (half the memory of a time beside every value)."""

    __slots__ = ("capacity", "count", "times")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.times = array("d", bytes(8 * capacity))
        self.count = 0  # frames so far; the newest is frame count - 1

    def tick(self, t: float) -> int:
        n = self.count
        self.times[n % self.capacity] = t
        self.count = n + 1
        return n


class _Raw:
    """One series' every sample over the clock's last frames; NaN where a frame had none."""

    __slots__ = ("clock", "first", "last", "values")

    def __init__(self, clock: _Clock) -> None:
        self.clock = clock
        self.values = array("d", [NAN]) * clock.capacity
        self.first = -1  # the first frame with a value
        self.last = -1  # the newest frame written

    def put(self, n: int, v: float) -> None:
        cap, values = self.clock.capacity, self.values
        if self.first < 0:
            self.first = n
        elif n <= self.last:  # a second value in one frame replaces the first
            values[n % cap] = v
            return
        for gap in range(max(self.last + 1, n - cap + 1), n):  # frames without a value
            values[gap % cap] = NAN
        values[n % cap] = v
        self.last = n

    def _frames(self) -> range:
        """The frames still held, newest first (those after ``last`` had no value)."""
        oldest = max(self.first, self.clock.count - self.clock.capacity)
        return range(self.last, oldest - 1, -1) if self.first >= 0 else range(0)

    def covers(self, since: float) -> bool:
        """Whether the values held reach back to ``since``, or are all there ever were."""
        clock = self.clock
        if self.first < 0 or self.first >= clock.count - clock.capacity:
            return True
        return clock.times[(clock.count - clock.capacity) % clock.capacity] <= since

    def points(self, since: float = float("-inf")) -> list[Point]:
        """Oldest first, only those at or after ``since``."""
        out: list[Point] = []
        cap, times, values = self.clock.capacity, self.clock.times, self.values
        for n in self._frames():
            t = times[n % cap]
            if t < since:
                break
            v = values[n % cap]
            if v == v:  # not NaN
                out.append((t, v))
        out.reverse()
        return out

    def tail(self, n: int) -> list[float]:
        out: list[float] = []
        cap, values = self.clock.capacity, self.values
        for frame in self._frames():
            if len(out) >= n:
                break
            v = values[frame % cap]
            if v == v:
                out.append(v)
        out.reverse()
        return out


class _Buckets:
    """Means over fixed time buckets; the bucket being filled counts as a point too. Buckets
    follow one another, so only the newest one's start is kept: the others' are whole steps
    before it (a bucket without a sample holds NaN)."""

    __slots__ = (
        "_count",
        "_newest",
        "_next",
        "_size",
        "_start",
        "_sum",
        "capacity",
        "step",
        "values",
    )

    def __init__(self, step: float, capacity: int) -> None:
        self.step = step
        self.capacity = capacity
        self.values = array("d", bytes(8 * capacity))
        self._next = 0
        self._size = 0
        self._newest: float | None = None  # start of the newest stored bucket
        self._start: float | None = None  # start of the bucket being filled
        self._sum = 0.0
        self._count = 0

    def add(self, t: float, v: float) -> None:
        start = t - t % self.step
        if self._start is not None and start != self._start:
            self._store(self._start, self._sum / self._count)
            self._sum, self._count = 0.0, 0
        self._start = start
        self._sum += v
        self._count += 1

    def _store(self, start: float, mean: float) -> None:
        if self._newest is not None:
            gap = round((start - self._newest) / self.step) - 1
            if gap < 0 or gap >= self.capacity:  # the clock went back, or all of it is past
                self._size = 0
            else:
                for _ in range(gap):
                    self._push(NAN)
        self._push(mean)
        self._newest = start

    def _push(self, v: float) -> None:
        self.values[self._next] = v
        self._next = (self._next + 1) % self.capacity
        self._size = min(self._size + 1, self.capacity)

    def span(self) -> float:
        return self.step * self.capacity

    def points(self, since: float) -> list[Point]:
        out: list[Point] = []
        if self._newest is not None:
            cap, values, step = self.capacity, self.values, self.step
            for k in range(self._size):
                t = self._newest - k * step
                if t < since:
                    break
                v = values[(self._next - 1 - k) % cap]
                if v == v:  # not NaN: a bucket that had samples
                    out.append((t, v))
            out.reverse()
        if self._count and self._start is not None and self._start >= since - self.step:
            out.append((self._start, self._sum / self._count))
        return out


class Series:
    __slots__ = ("first", "raw", "tiers", "updated")

    def __init__(self, clock: _Clock) -> None:
        self.raw = _Raw(clock)
        self.tiers = tuple(_Buckets(step, n) for step, n in TIERS)
        self.first: float | None = None
        self.updated = 0.0

    def add(self, n: int, t: float, v: float) -> None:
        if self.first is None:
            self.first = t
        self.updated = t
        self.raw.put(n, v)
        for tier in self.tiers:
            tier.add(t, v)

    def window(self, seconds: float, now: float) -> list[Point]:
        since = now - seconds
        if self.raw.covers(since):
            return self.raw.points(since)
        for tier in self.tiers:
            if tier.span() >= seconds:
                return tier.points(since)
        return self.tiers[-1].points(since)


class History:
    """Bounded history of recent Frames: ``add`` each Frame, then ask for series by name."""

    def __init__(
        self,
        raw_points: int = RAW_POINTS,
        max_series: int = MAX_SERIES,
    ) -> None:
        self._clock = _Clock(raw_points)
        self._max_series = max_series
        self._series: dict[SeriesKey, Series] = {}
        # Only the newest Frame: the series hold the past (older Frames were kept unread).
        self.latest: Frame | None = None
        self.frames_added = 0
        self._n = -1  # the clock's frame number of the Frame being added

    def __len__(self) -> int:
        return len(self._series)

    def add(self, frame: Frame) -> None:
        t = frame.time
        self.latest = frame
        self.frames_added += 1
        self._n = self._clock.tick(t)
        for m in frame.models:
            for name in MODEL_FIELDS:
                self._put(("model", m.name, name), t, getattr(m, name))
            if m.extras:
                for name in SERVING_FIELDS:
                    self._put(("model", m.name, name), t, m.extras.get(name))
        for g in frame.gpus:
            key = gpu_key(g.index, g.host)
            # A fleet's GPUs join only while there is room: 8000 of them must not churn
            # series in and out (each holds its rings preallocated) or push out the models.
            full = len(self._series) >= self._max_series
            if g.host is not None and full and ("gpu", key, GPU_FIELDS[0]) not in self._series:
                continue
            for name in GPU_FIELDS:
                self._put(("gpu", key, name), t, getattr(g, name))
            reasons = g.health.throttle_reasons if g.health is not None else None
            if reasons is not None:
                self._throttle(key, t, reasons)
        self._evict(t)

    def _throttle(self, key: str, t: float, reasons: tuple[str, ...]) -> None:
        for band, words in THROTTLE_BANDS:
            skey = ("gpu", key, "throttle:" + band)
            on = not words.isdisjoint(reasons)
            if on or skey in self._series:
                self._put(skey, t, 1.0 if on else 0.0)

    def _put(self, key: SeriesKey, t: float, value: float | None) -> None:
        if value is None:
            return
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = Series(self._clock)
        series.add(self._n, t, float(value))

    def _evict(self, now: float) -> None:
        if len(self._series) <= self._max_series and not any(
            now - s.updated > LONGEST_WINDOW for s in self._series.values()
        ):
            return
        # Most recently updated first; at a tie, this host's series before a fleet GPU's.
        keep = sorted(
            (
                (s.updated, k[0] != "gpu" or "/" not in k[1], k)
                for k, s in self._series.items()
                if now - s.updated <= LONGEST_WINDOW
            ),
            reverse=True,
        )[: self._max_series]
        kept = {k for _, _, k in keep}
        for k in [k for k in self._series if k not in kept]:
            del self._series[k]

    # -- queries --------------------------------------------------------------------------

    def window(self, key: SeriesKey, seconds: float, now: float) -> list[Point]:
        """Points of one series over the last ``seconds`` before ``now``, oldest first."""
        series = self._series.get(key)
        return series.window(seconds, now) if series else []

    def last(self, key: SeriesKey, n: int) -> list[float]:
        """The last ``n`` collected values (fewer if there are not so many), oldest first."""
        series = self._series.get(key)
        return series.raw.tail(n) if series else []

    def gpu(
        self, index: int, field: str, seconds: float, now: float, host: str | None = None
    ) -> list[Point]:
        return self.window(("gpu", gpu_key(index, host), field), seconds, now)

    def throttle(
        self, index: int, seconds: float, now: float, host: str | None = None
    ) -> dict[str, list[Point]]:
        """Each throttle band ever seen on the GPU: its 0/1 points (bucket means further back)."""
        key = gpu_key(index, host)
        out = {}
        for band, _ in THROTTLE_BANDS:
            if ("gpu", key, "throttle:" + band) in self._series:
                out[band] = self.window(("gpu", key, "throttle:" + band), seconds, now)
        return out

    def has_gpu(self, index: int, host: str | None = None) -> bool:
        return ("gpu", gpu_key(index, host), GPU_FIELDS[0]) in self._series

    def model(self, name: str, field: str, seconds: float, now: float) -> list[Point]:
        return self.window(("model", name, field), seconds, now)

    def model_window(
        self, name: str, seconds: float, now: float, fields: Iterable[str] = MODEL_FIELDS
    ) -> dict[str, list[Point]]:
        return {f: self.model(name, f, seconds, now) for f in fields}


def combine(backfill: Sequence[Point], local: Sequence[Point]) -> list[Point]:
    """Backfilled points from before the first local one, then the local ones."""
    if not local:
        return sorted(backfill)
    first = local[0][0]
    return [p for p in sorted(backfill) if p[0] < first] + list(local)


def combine_all(
    backfill: Mapping[str, Sequence[Point]] | None, local: Mapping[str, Sequence[Point]]
) -> dict[str, list[Point]]:
    backfill = backfill or {}
    return {name: combine(backfill.get(name, ()), points) for name, points in local.items()}
