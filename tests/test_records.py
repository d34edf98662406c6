"""vramtop.records: a record means what ``dataclass(frozen=True)`` would have made of it."""

from __future__ import annotations

import dataclasses
import math
import pickle

import pytest

from vramtop.records import record


def twins() -> tuple[type, type]:
    """The same class body made by dataclass(frozen=True, slots=True) and by @record."""

    def body() -> type:
        class Point:
            __module__ = __name__

            x: int
            y: float = 0.0
            secret: str = dataclasses.field(default="", repr=False)
            note: str = dataclasses.field(default="", compare=False)

        return Point

    return dataclasses.dataclass(frozen=True, slots=True)(body()), record(body())


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"x": 1}, {"x": 1}),
        ({"x": 1}, {"x": 2}),
        ({"x": 1, "y": 2.5}, {"x": 1, "y": 2.5}),
        ({"x": 1, "note": "a"}, {"x": 1, "note": "b"}),  # compare=False: still equal
        ({"x": 1, "secret": "s"}, {"x": 1, "secret": "t"}),
    ],
)
def test_equality_hash_and_repr_match_dataclass(a: dict, b: dict) -> None:
    plain, rec = twins()
    assert (rec(**a) == rec(**b)) is (plain(**a) == plain(**b))
    assert (rec(**a) != rec(**b)) is (plain(**a) != plain(**b))
    if plain(**a) == plain(**b):
        assert hash(rec(**a)) == hash(rec(**b))
    assert repr(rec(**a)) == repr(plain(**a))
    assert "hunter2" not in repr(rec(x=1, secret="hunter2"))  # repr=False: a token stays out


def test_nan_is_equal_to_itself_as_in_a_tuple() -> None:
    _, rec = twins()
    nan = math.nan
    assert rec(x=1, y=nan) == rec(x=1, y=nan)  # the same float object: tuple identity first
    assert rec(x=1, y=float("nan")) != rec(x=1, y=float("nan"))


def test_other_classes_are_never_equal() -> None:
    plain, rec = twins()
    _, other = twins()
    assert rec(x=1) != plain(x=1)
    assert rec(x=1) != other(x=1)
    assert rec(x=1) != (1, 0.0)


def test_frozen_fields_replace_and_pickle() -> None:
    _, rec = twins()
    r = rec(x=1, y=2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.x = 3  # type: ignore[misc]
    assert dataclasses.replace(r, x=3) == rec(x=3, y=2.0)
    assert [f.name for f in dataclasses.fields(r)] == ["x", "y", "secret", "note"]
    assert dataclasses.asdict(r)["y"] == 2.0
    assert {r, rec(x=1, y=2.0)} == {r}


def test_one_field_and_no_field_records() -> None:
    @record
    class One:
        v: int

    @record(slots=False)
    class Empty:
        pass

    assert One(1) == One(1) and One(1) != One(2) and hash(One(1)) == hash(One(1))
    assert repr(One(1)).endswith(".One(v=1)")  # __qualname__, as dataclass writes it
    assert Empty() == Empty() and repr(Empty()).endswith(".Empty()")


def test_a_class_keeps_its_own_methods() -> None:
    @record
    class Named:
        name: str

        def __repr__(self) -> str:
            return f"<{self.name}>"

    assert repr(Named("a")) == "<a>"
    assert Named("a") == Named("a")

    def with_eq() -> type:
        class Loose:
            x: int = 0

            def __eq__(self, other: object) -> bool:
                return getattr(other, "x", None) == self.x

        return Loose

    # its own __eq__ stays; its hash is the fields', as dataclass(frozen=True) gives it
    plain, rec = dataclasses.dataclass(frozen=True, slots=True)(with_eq()), record(with_eq())
    assert rec(1) == plain(1) and hash(rec(1)) == hash(plain(1)) == hash((1,))


def test_records_pickle_like_frozen_slotted_dataclasses() -> None:
    from vramtop.model import SourceStatus

    s = SourceStatus("nvml", "ok")
    assert pickle.loads(pickle.dumps(s)) == s


@pytest.mark.parametrize("slots", [True, False])
def test_assigning_or_deleting_fails_as_on_a_frozen_dataclass(slots: bool) -> None:
    def body() -> type:
        class Point:
            x: int = 0

        return Point

    plain = dataclasses.dataclass(frozen=True, slots=slots)(body())
    rec = record(slots=slots)(body())

    def outcome(obj: object, act) -> tuple[str, str]:
        try:
            act(obj)
        except Exception as err:  # the exception itself is what is compared
            return type(err).__name__, str(err)
        return "none", ""

    for act in (
        lambda o: setattr(o, "x", 1),
        lambda o: delattr(o, "x"),
        lambda o: setattr(o, "y", 1),  # not a field
        lambda o: delattr(o, "y"),
    ):
        assert outcome(rec(), act) == outcome(plain(), act)
    assert outcome(rec(), lambda o: setattr(o, "x", 1))[0] == "FrozenInstanceError"
