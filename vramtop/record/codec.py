"""Frame <-> bytes with full fidelity: a key frame holds every field, a delta only what changed.

The encoding is JSON (exact for floats, ints, None, text) shaped by the dataclasses in
``vramtop.model``: a record is an object of field name -> value, a tuple of records is a list whose
entries say, per record, "unchanged: previous[j]" (an int), "previous[j] with these fields
changed" (``[j, {...}]``) or "new" (a full object). The previous record is found by identity
(GPU index, pid, model name, ...), so a process appearing does not shift everything after it.
Deflate then removes what repeats across frames. Field names, not positions, keep older files
readable after fields are added: a missing field takes the dataclass default.
"""

from __future__ import annotations

import dataclasses
import json
import operator
import types
import typing
import zlib
from collections.abc import Callable
from typing import Any

from vramtop import model
from vramtop.health import OK, UNKNOWN, finding
from vramtop.model import Frame
from vramtop.record.checks import Bad, checker, optional

SCALAR, TUPLE, MAP, RECORD, RECORDS = range(5)
QUIET = (OK[0], UNKNOWN[0])  # Health words that are no change worth stopping at
_UNCHANGED = object()

# What makes two readings "the same one" in consecutive frames; only compression depends on it.
_KEYS: dict[type, Callable[[Any], Any]] = {
    model.GpuReading: lambda g: (g.host, g.index),
    model.ProcessReading: lambda p: (p.pid, p.gpu_index, p.mig_device),
    model.MigReading: lambda m: m.uuid,
    model.ModelReading: lambda m: m.name,
    model.AlertReading: lambda a: (a.name, a.source, tuple(a.labels.items())),
    model.SourceStatus: lambda s: s.name,
    model.HostReading: lambda h: h.hostname,
    model.HealthEvent: lambda e: (e.time, e.gpu_uuid, e.gpu_index, e.kind, e.code),
    model.SilenceReading: lambda s: s.id,
}
# Frame.time travels in the block header, not in the payload.
_OMIT = {Frame: frozenset({"time"})}


def _kind(tp: Any) -> tuple[int, type | None]:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    if dataclasses.is_dataclass(tp):
        return RECORD, tp  # type: ignore[return-value]
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis and dataclasses.is_dataclass(args[0]):
            return RECORDS, args[0]  # type: ignore[return-value]
        return TUPLE, None
    if origin is types.MappingProxyType or tp is types.MappingProxyType:
        return MAP, None
    return SCALAR, None


@dataclasses.dataclass(frozen=True, slots=True)
class Spec:
    """How one dataclass is written: its fields in order, what each holds, and a getter that
    reads them all in one call (the hot path compares whole tuples of values)."""

    names: tuple[str, ...]
    kinds: tuple[int, ...]
    subs: tuple[Any, ...]
    get: Callable[[Any], tuple]
    pos: dict[str, int]
    skip: frozenset[int]  # positions left out of the payload
    checks: tuple[Callable[[Any], Any] | None, ...]  # per scalar, tuple or mapping field
    optional: tuple[bool, ...]
    required: frozenset[str]  # fields without a default: a full record must hold them


SPECS: dict[type, Spec] = {}


def _fill(cls: type) -> None:
    if cls in SPECS:
        return
    hints = typing.get_type_hints(cls)
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    kinds, subs = zip(*(_kind(hints[n]) for n in names), strict=True)
    getter = operator.attrgetter(*names)
    no_default = dataclasses.MISSING
    SPECS[cls] = Spec(
        names,
        kinds,
        subs,
        getter if len(names) > 1 else lambda r: (getter(r),),
        {n: i for i, n in enumerate(names)},
        frozenset(i for i, n in enumerate(names) if n in _OMIT.get(cls, ())),
        tuple(
            checker(hints[n], f"{cls.__name__}.{n}") if k in (SCALAR, TUPLE, MAP) else None
            for n, k in zip(names, kinds, strict=True)
        ),
        tuple(optional(hints[n])[0] for n in names),
        frozenset(
            f.name
            for f in dataclasses.fields(cls)  # type: ignore[arg-type]
            if f.default is no_default and f.default_factory is no_default
        ),
    )
    for sub in subs:
        if sub is not None:
            _fill(sub)


_fill(Frame)


# ---- encoding ----


def _full_value(kind: int, sub: Any, value: Any) -> Any:
    if value is None or kind in (SCALAR, TUPLE):  # json writes tuples as lists
        return value
    if kind == MAP:
        return dict(value)
    if kind == RECORD:
        return full(sub, value)
    return [full(sub, v) for v in value]


def full(cls: type, rec: Any) -> dict[str, Any]:
    spec = SPECS[cls]
    return {
        name: _full_value(kind, sub, value)
        for i, (name, kind, sub, value) in enumerate(
            zip(spec.names, spec.kinds, spec.subs, spec.get(rec), strict=True)
        )
        if i not in spec.skip
    }


def diff(cls: type, prev: Any, cur: Any) -> dict[str, Any]:
    spec = SPECS[cls]
    before, after = spec.get(prev), spec.get(cur)
    out: dict[str, Any] = {}
    if before == after:
        return out
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        if a is b or i in spec.skip:
            continue
        kind = spec.kinds[i]
        if kind == SCALAR:
            if a != b:
                out[spec.names[i]] = b
        elif a is None or b is None:
            out[spec.names[i]] = _full_value(kind, spec.subs[i], b)
        elif kind == RECORD:
            d = diff(spec.subs[i], a, b)
            if d:
                out[spec.names[i]] = d
        elif kind == RECORDS:
            d = _diff_list(spec.subs[i], a, b)
            if d is not _UNCHANGED:
                out[spec.names[i]] = d
        elif a != b:
            out[spec.names[i]] = _full_value(kind, None, b)
    return out


def _diff_list(cls: type, prev: tuple, cur: tuple) -> Any:
    key = _KEYS.get(cls, lambda r: None)
    where: dict[Any, list[int]] | None = None
    entries: list[Any] = []
    same = len(prev) == len(cur)
    for i, c in enumerate(cur):
        k = key(c)
        if where is None and i < len(prev) and key(prev[i]) == k:
            j = i  # still in step with the previous frame: no lookup needed
        else:
            if where is None:
                where = {}
                for n, p in enumerate(prev):
                    where.setdefault(key(p), []).append(n)
                for n in range(i):  # already matched in step
                    where[key(prev[n])].remove(n)
            js = where.get(k)
            if not js:
                entries.append(full(cls, c))
                same = False
                continue
            j = js.pop(0)
        # Values that compare equal are not sent again (dataclass __eq__ is the cheap test).
        d = {} if prev[j] == c else diff(cls, prev[j], c)
        entries.append([j, d] if d else j)
        same = same and not d and i == j
    return _UNCHANGED if same else entries


class Encoder:
    """Turns each Frame into a key frame or a delta against the one before it."""

    def __init__(self) -> None:
        self._prev: Frame | None = None

    def encode(self, frame: Frame, key: bool) -> bytes:
        obj = full(Frame, frame) if key or self._prev is None else diff(Frame, self._prev, frame)
        self._prev = frame
        return dump(obj)


def dump(obj: Any) -> bytes:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), check_circular=False)
    # surrogatepass: command lines read with surrogateescape keep their undecodable bytes.
    return text.encode("utf-8", "surrogatepass")


def load(data: bytes) -> Any:
    return json.loads(data.decode("utf-8", "surrogatepass"))


# ---- decoding: a recording is input from outside, so every value is checked ----


def _value(spec: Spec, i: int, prev: Any, raw: Any) -> Any:
    kind, sub = spec.kinds[i], spec.subs[i]
    if kind in (SCALAR, TUPLE, MAP):
        return spec.checks[i](raw)  # type: ignore[misc]
    if raw is None:
        if spec.optional[i]:
            return None
        raise Bad(f"{spec.names[i]} is missing")
    if kind == RECORD:
        return record(sub, prev, raw)  # type: ignore[arg-type]
    if type(raw) is not list:
        raise Bad(f"{spec.names[i]} is not a list")
    n = len(prev) if prev is not None else 0
    out = []
    for e in raw:
        if type(e) is int and 0 <= e < n:
            out.append(prev[e])
        elif type(e) is list and len(e) == 2 and type(e[0]) is int and 0 <= e[0] < n:
            out.append(record(sub, prev[e[0]], e[1]))  # type: ignore[arg-type]
        elif type(e) is dict:
            out.append(record(sub, None, e))  # type: ignore[arg-type]
        else:
            raise Bad(f"{spec.names[i]} refers to an entry the frame before did not have")
    return tuple(out)


def record(cls: type, prev: Any, raw: Any, **extra: Any) -> Any:
    """``raw`` applied to ``prev`` (None: ``raw`` is a full record). Fields this vramtop does not
    know are ignored; fields missing from a full record take their defaults. Bad when ``raw``
    does not fit the dataclass."""
    spec = SPECS[cls]
    if type(raw) is not dict:
        raise Bad(f"a {cls.__name__} is not an object")
    if prev is None:
        missing = spec.required - raw.keys() - extra.keys()
        if missing:
            raise Bad(f"a {cls.__name__} has no {min(missing)}")
        kwargs = {
            name: _value(spec, i, None, value)
            for name, value in raw.items()
            if (i := spec.pos.get(name)) is not None and i not in spec.skip
        }
        return cls(**kwargs, **extra)
    values = list(spec.get(prev))
    for name, value in raw.items():
        i = spec.pos.get(name)
        if i is not None and i not in spec.skip:
            values[i] = _value(spec, i, values[i], value)
    for name, value in extra.items():
        values[spec.pos[name]] = value
    return cls(*values)


class Decoder:
    def __init__(self) -> None:
        self.prev: Frame | None = None

    def decode(self, data: bytes, time: float, key: bool) -> Frame:
        frame = record(Frame, None if key else self.prev, load(data), time=time)
        self.prev = frame
        return frame


def alert_digest(frame: Frame) -> int:
    """A checksum of the set of (alert name, state), the newest health event and each GPU's
    warning or critical Health finding: replay's "next change" finds where any of them
    changes without decoding frames. A frame without health digests as it did before health
    was recorded."""
    parts = sorted({f"{a.name}\x1f{a.state}" for a in frame.alerts})
    if frame.events:
        e = frame.events[-1]  # the list is bounded: its newest entry says a new one came
        parts.append(
            f"event\x1f{e.time!r}\x1f{e.gpu_uuid}\x1f{e.gpu_index}\x1f{e.kind}\x1f{e.code}"
        )
    for g in frame.gpus:
        # Not info: a power cap that comes and goes with the load is no stop.
        word, severity = finding(g, frame.events, frame.time)
        if severity in ("critical", "warning"):
            parts.append(f"health\x1f{g.host}\x1f{g.index}\x1f{word}")
    return zlib.crc32("\x1e".join(parts).encode("utf-8", "surrogatepass"))
