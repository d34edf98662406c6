"""Immutable records: ``dataclass(frozen=True)`` with equality and hash compiled at first use.

On Python 3.11 dataclass() compiles each method it writes with an exec of its own, six for a
frozen class: the 34 records a one-shot imports took ~35 ms of its ~150 ms (issue 14). Here
dataclass() compiles ``__init__`` only (the frozen ``__setattr__``/``__delattr__``: below); the
``__eq__`` and ``__hash__`` that dataclass would have written (the fields with compare=True, in
order, between records of the same class) are compiled when a class is first compared or
hashed, and ``__repr__`` (the fields with repr=True) is one function for all.
``dataclasses.fields``, ``replace`` and ``asdict`` work as on any dataclass.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


def _eq(self: Any, other: object) -> bool:
    return _specialise(self.__class__, "__eq__")(self, other)


def _hash(self: Any) -> int:
    return _specialise(self.__class__, "__hash__")(self)


def _specialise(cls: type, name: str) -> Callable[..., Any]:
    """The method as dataclass writes it, compiled at its class's first use and put on the
    class: a record never compared or hashed costs nothing, and one that is costs what a
    dataclass's would (Python's attribute caches make this 2.5x faster than a generic one)."""
    fields = "".join(f"self.{f.name}," for f in dataclasses.fields(cls) if f.compare)
    if name == "__eq__":
        others = fields.replace("self.", "other.")
        body = (
            "def __eq__(self, other):\n"
            "    if other.__class__ is self.__class__:\n"
            f"        return ({fields}) == ({others})\n"
            "    return NotImplemented\n"
        )
    else:
        body = f"def __hash__(self):\n    return hash(({fields}))\n"
    space: dict[str, Any] = {}
    exec(body, {}, space)  # the text is made here, of the class's own field names
    fn = space[name]
    fn.__qualname__ = f"{cls.__qualname__}.{name}"
    setattr(cls, name, fn)
    return fn


def _repr(self: Any) -> str:
    shown = (f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self) if f.repr)
    return f"{self.__class__.__qualname__}({', '.join(shown)})"


_SHARED = {"__eq__": _eq, "__hash__": _hash, "__repr__": _repr}


def _written(cls: type, name: str) -> bool:
    """Whether the class body wrote the method. The None that Python puts in ``__hash__`` for
    a body's ``__eq__`` is not, as dataclass reads it: a frozen record still hashes its fields."""
    if name == "__hash__" and cls.__dict__.get(name, 0) is None and "__eq__" in cls.__dict__:
        return False
    return name in cls.__dict__


@overload
def record(cls: type[T], /) -> type[T]: ...
@overload
def record(*, slots: bool = True) -> Callable[[type[T]], type[T]]: ...
def record(cls: type[T] | None = None, /, *, slots: bool = True) -> Any:
    """``@record`` or ``@record(slots=False)`` on a class, as ``@dataclass(frozen=True, ...)``."""

    def make(c: type[T]) -> type[T]:
        for name, fn in _SHARED.items():
            if not _written(c, name):  # a class's own method stays
                setattr(c, name, fn)
        with _writing_frozen:
            if _WRITES_FROZEN is not None:
                dataclasses._frozen_get_del_attr = _frozen_methods  # type: ignore[attr-defined]
            try:
                return dataclasses.dataclass(c, frozen=True, slots=slots, repr=False, eq=False)
            finally:
                if _WRITES_FROZEN is not None:
                    dataclasses._frozen_get_del_attr = _WRITES_FROZEN  # type: ignore[attr-defined]

    return make if cls is None else make(cls)


# dataclass() writes a frozen class's __setattr__ and __delattr__ with an exec each, through
# this private function (Python 3.11 and 3.12: 7 ms of a one-shot's imports). While a record
# is made, it is replaced by one that returns the same two methods as closures, made without
# compiling; another thread's dataclass made meanwhile gets the same methods. Where the
# function is missing (3.13 compiles a class's methods in one exec), dataclass() writes them.
_WRITES_FROZEN = getattr(dataclasses, "_frozen_get_del_attr", None)
_writing_frozen = threading.Lock()


def _frozen_methods(cls: type, fields: list[dataclasses.Field], globals: Any) -> tuple[Any, Any]:
    """dataclass's frozen ``__setattr__`` and ``__delattr__`` for ``cls``, word for word."""
    names = tuple(f.name for f in fields)

    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)

    return __setattr__, __delattr__
