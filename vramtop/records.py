"""Immutable records: ``dataclass(frozen=True)`` with equality, hash and repr written once.

On Python 3.11 dataclass() compiles each method it writes with an exec of its own, six for a
frozen class: the 34 records a one-shot imports took ~35 ms of its ~150 ms (issue 14). Here
dataclass() writes ``__init__`` and the frozen ``__setattr__``/``__delattr__`` only, and every
record shares the ``__eq__``, ``__hash__`` and ``__repr__`` that dataclass would have written:
the fields with compare=True, in order, between records of the same class; those with
repr=True. ``dataclasses.fields``, ``replace`` and ``asdict`` work as on any dataclass.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from operator import attrgetter
from typing import Any, TypeVar, overload

T = TypeVar("T")

_KEYS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _key(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    """The tuple of a record's compared fields, by one attrgetter per class."""
    if (key := _KEYS.get(cls)) is None:
        names = [f.name for f in dataclasses.fields(cls) if f.compare]
        if len(names) > 1:
            key = attrgetter(*names)
        else:  # attrgetter of one name gives the value itself, of none is not allowed
            key = lambda r, names=names: tuple(getattr(r, n) for n in names)  # noqa: E731
        _KEYS[cls] = key
    return key


def _eq(self: Any, other: object) -> bool:
    if other.__class__ is not self.__class__:
        return NotImplemented
    key = _key(self.__class__)
    return key(self) == key(other)


def _hash(self: Any) -> int:
    return hash(_key(self.__class__)(self))


def _repr(self: Any) -> str:
    shown = (f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr)
    return f"{self.__class__.__qualname__}({', '.join(shown)})"


_SHARED = {"__eq__": _eq, "__hash__": _hash, "__repr__": _repr}


@overload
def record(cls: type[T], /) -> type[T]: ...
@overload
def record(*, slots: bool = True) -> Callable[[type[T]], type[T]]: ...
def record(cls: type[T] | None = None, /, *, slots: bool = True) -> Any:
    """``@record`` or ``@record(slots=False)`` on a class, as ``@dataclass(frozen=True, ...)``."""

    def make(c: type[T]) -> type[T]:
        for name, fn in _SHARED.items():
            if name not in c.__dict__:  # a class's own method stays
                setattr(c, name, fn)
        return dataclasses.dataclass(c, frozen=True, slots=slots, repr=False, eq=False)

    return make if cls is None else make(cls)
