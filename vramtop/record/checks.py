"""What a decoded value may be, per field type: a recording is input from outside, and a
crafted one (valid checksums, wrong payload) must not reach the exporters or the live view.

``checker(type)`` gives a function that returns the value to keep or raises ``Bad`` with a short
reason. Non-finite numbers in optional fields become None (not available), as vramtop shows a
missing value; integers must fit 64 bits; epochs must be dates a calendar can show.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from typing import Any

MIN_EPOCH = -62135596800.0  # 0001-01-01T00:00:00Z
MAX_EPOCH = 253402300799.0  # 9999-12-31T23:59:59Z
MAX_INT = 1 << 63
# Fields that hold an epoch: formatted as a date, so they must be one.
EPOCHS = frozenset({"since", "active_since", "time"})


class Bad(ValueError):
    """A decoded value that does not fit its field; the message is the reason."""


def valid_epoch(value: Any) -> bool:
    return type(value) in (int, float) and MIN_EPOCH <= value <= MAX_EPOCH


def optional(tp: Any) -> tuple[bool, Any]:
    """(whether None is allowed, the type without None)."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return len(args) < len(typing.get_args(tp)), args[0]
    return False, tp


def checker(tp: Any, name: str) -> Callable[[Any], Any]:
    """The check for a scalar, tuple or mapping field of type ``tp`` named ``name``."""
    nullable, tp = optional(tp)
    check = _check(tp, name)

    def run(value: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise Bad(f"{name} is missing")
        try:
            return check(value)
        except _NotFinite:
            if nullable:
                return None
            raise Bad(f"{name} is not a finite number") from None

    return run


class _NotFinite(Exception):
    pass


def _check(tp: Any, name: str) -> Callable[[Any], Any]:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        allowed = frozenset(args)
        return lambda v: v if type(v) is str and v in allowed else _bad(name, v, "a known state")
    if tp is str:
        return lambda v: v if type(v) is str else _bad(name, v, "text")
    if tp is bool:
        return lambda v: v if type(v) is bool else _bad(name, v, "true or false")
    if tp is int:
        return lambda v: (
            v if type(v) is int and -MAX_INT < v < MAX_INT else _bad(name, v, "an integer")
        )
    if tp is float:
        return _epoch(name) if name in EPOCHS else _number(name)
    if origin is tuple:
        return _tuple(args, name)
    if origin is types.MappingProxyType or tp is types.MappingProxyType:
        return _mapping(args, name)
    raise TypeError(f"no check for {tp!r}")  # a new field type: teach this module


def _number(name: str) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if type(v) is float:
            if not math.isfinite(v):
                raise _NotFinite
            return v
        if type(v) is int and -MAX_INT < v < MAX_INT:
            return v
        return _bad(name, v, "a number")

    return check


def _epoch(name: str) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if type(v) is float and not math.isfinite(v):
            raise _NotFinite
        return v if valid_epoch(v) else _bad(name, v, "a time between the years 1 and 9999")

    return check


def _tuple(args: tuple, name: str) -> Callable[[Any], Any]:
    if len(args) == 2 and args[1] is Ellipsis:
        each = _strict(args[0], name)
        return lambda v: tuple(each(x) for x in v) if type(v) is list else _bad(name, v, "a list")
    parts = [_strict(a, name) for a in args]

    def fixed(v: Any) -> Any:
        if type(v) is not list or len(v) != len(parts):
            return _bad(name, v, f"a list of {len(parts)}")
        return tuple(check(x) for check, x in zip(parts, v, strict=True))

    return fixed


def _mapping(args: tuple, name: str) -> Callable[[Any], Any]:
    from vramtop.model import freeze

    value_type = args[1] if len(args) == 2 else str
    each = _check(value_type, name)

    def check(v: Any) -> Any:
        if type(v) is not dict:
            return _bad(name, v, "an object")
        out = {}
        for key, value in v.items():
            try:
                out[key] = each(value)
            except _NotFinite:
                continue  # a figure that is not a number is not there
        return freeze(out)

    return check


def _strict(tp: Any, name: str) -> Callable[[Any], Any]:
    """An element of a tuple: non-finite is wrong here, not 'not available'."""
    check = _check(tp, name)

    def run(v: Any) -> Any:
        try:
            return check(v)
        except _NotFinite:
            raise Bad(f"{name} holds a number that is not finite") from None

    return run


def _bad(name: str, value: Any, want: str) -> Any:
    raise Bad(f"{name} holds {type(value).__name__} where {want} belongs")
