"""Profiles: one TOML file per server family, mapping vramtop's fields to metric names.

Profiles are data. A ``model`` profile names the metric behind each per-model figure (latency,
requests, errors, queue, VRAM, extras); a ``gpu`` profile the metrics of a GPU exporter; a
``host`` profile node_exporter's. The PromQL is generated from them (vramtop/sources/promql.py)
and the same definitions drive the direct scrape of a server's /metrics (sources/scrape.py).
"""

from __future__ import annotations

import tomllib
from dataclasses import field
from pathlib import Path
from typing import Any

from vramtop.records import record

BUILTIN_DIR = Path(__file__).parent
KINDS = ("model", "gpu", "host")
SERIES_KINDS = ("histogram", "summary", "counter", "gauge", "mean")
MODEL_FIELDS = ("latency", "requests", "successes", "errors", "queue", "vram")


class ProfileError(ValueError):
    """A profile file is wrong; the message names the file and the key."""


@record
class Series:
    """Where one figure comes from. ``metrics`` are alternatives: the first that exists wins."""

    kind: str
    metrics: tuple[str, ...]
    match: tuple[tuple[str, str], ...] = ()  # regex label matchers
    agg: str = "sum"  # within one instance (max: one series per tensor-parallel rank)
    combine: str = "sum"  # across instances
    quantile: float | None = None
    scale: float = 1.0
    mean_count: tuple[str, ...] = ()


@record
class Field:
    metric: str
    scale: float = 1.0
    match: tuple[tuple[str, str], ...] = ()


@record
class Profile:
    name: str
    kind: str
    description: str = ""
    detect: tuple[str, ...] = ()
    path: str = ""
    # model profiles
    model_label: str = "model"
    series: dict[str, Series] = field(default_factory=dict)  # latency, requests, extras.X, ...
    # gpu and host profiles
    fields: dict[str, Field] = field(default_factory=dict)
    expressions: dict[str, str] = field(default_factory=dict)
    index_label: str | None = None
    uuid_label: str | None = None
    name_label: str | None = None
    host_labels: tuple[str, ...] = ("instance",)
    processes: dict[str, str] = field(default_factory=dict)
    # Why a figure is missing where the server cannot or will not export it (figure -> reason)
    absent: dict[str, str] = field(default_factory=dict)


def load_all(extra_dirs: list[Path] | tuple[Path, ...] = ()) -> dict[str, Profile]:
    """Built-in profiles, then the user's (same name replaces a built-in)."""
    profiles: dict[str, Profile] = {}
    for directory in (BUILTIN_DIR, *extra_dirs):
        if not directory.is_dir():
            continue
        for path in sorted(directory.glob("*.toml")):
            profile = load(path)
            profiles[profile.name] = profile
    return profiles


def load(path: Path) -> Profile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ProfileError(f"{path}: cannot read profile ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise ProfileError(f"{path}: not valid TOML: {err}") from None
    try:
        return _parse(data, str(path))
    except ProfileError as err:
        raise ProfileError(f"{path}: {err}") from None


def _parse(data: dict[str, Any], path: str) -> Profile:
    known = {
        "name",
        "kind",
        "description",
        "detect",
        "model_label",
        "index_label",
        "uuid_label",
        "name_label",
        "host_labels",
        "fields",
        "expressions",
        "processes",
        "extras",
        "absent",
        *MODEL_FIELDS,
    }
    for key in data:
        if key not in known:
            raise ProfileError(f"unknown key {key!r}")
    name = _str(data, "name")
    kind = _str(data, "kind")
    if kind not in KINDS:
        raise ProfileError(f"key 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    series: dict[str, Series] = {}
    for key in MODEL_FIELDS:
        if key in data:
            series[key] = _series(data[key], key)
    for key, spec in _table(data, "extras").items():
        series[f"extras.{key}"] = _series(spec, f"extras.{key}")
    fields_ = {k: _field(v, f"fields.{k}") for k, v in _table(data, "fields").items()}
    exprs = {k: _plain(v, f"expressions.{k}") for k, v in _table(data, "expressions").items()}
    procs = {k: _plain(v, f"processes.{k}") for k, v in _table(data, "processes").items()}
    absent = {k: _plain(v, f"absent.{k}") for k, v in _table(data, "absent").items()}
    return Profile(
        name=name,
        kind=kind,
        description=str(data.get("description", "")),
        detect=_names(data.get("detect", []), "detect"),
        path=path,
        model_label=str(data.get("model_label", "model")),
        series=series,
        fields=fields_,
        expressions=exprs,
        index_label=data.get("index_label"),
        uuid_label=data.get("uuid_label"),
        name_label=data.get("name_label"),
        host_labels=_names(data.get("host_labels", ["instance"]), "host_labels"),
        processes=procs,
        absent=absent,
    )


def _series(spec: Any, where: str) -> Series:
    if not isinstance(spec, dict):
        raise ProfileError(f"key {where!r} must be a table")
    allowed = {*SERIES_KINDS, "match", "agg", "combine", "quantile", "scale"}
    for key in spec:
        if key not in allowed:
            raise ProfileError(f"unknown key {where}.{key}")
    kinds = [k for k in SERIES_KINDS if k in spec]
    if len(kinds) != 1:
        raise ProfileError(f"{where} must have exactly one of {', '.join(SERIES_KINDS)}")
    kind = kinds[0]
    count: tuple[str, ...] = ()
    if kind == "mean":
        mean = spec["mean"]
        if not isinstance(mean, dict) or set(mean) != {"sum", "count"}:
            raise ProfileError(f"{where}.mean must be a table with 'sum' and 'count'")
        metrics = _names(mean["sum"], f"{where}.mean.sum")
        count = _names(mean["count"], f"{where}.mean.count")
    else:
        metrics = _names(spec[kind], f"{where}.{kind}")
    quantile = spec.get("quantile")
    if quantile is not None and not (isinstance(quantile, float) and 0 < quantile < 1):
        raise ProfileError(f"{where}.quantile must be a number between 0 and 1")
    for key in ("agg", "combine"):
        if spec.get(key, "sum") not in ("sum", "max"):
            raise ProfileError(f"{where}.{key} must be sum or max")
    return Series(
        kind=kind,
        metrics=metrics,
        match=_match(spec.get("match", {}), f"{where}.match"),
        agg=spec.get("agg", "sum"),
        combine=spec.get("combine", "sum"),
        quantile=quantile,
        scale=_number(spec.get("scale", 1.0), f"{where}.scale"),
        mean_count=count,
    )


def _field(spec: Any, where: str) -> Field:
    if (
        not isinstance(spec, dict)
        or "metric" not in spec
        or set(spec) - {"metric", "scale", "match"}
    ):
        raise ProfileError(f"{where} must be a table with 'metric' and optional 'scale', 'match'")
    return Field(
        _plain(spec["metric"], f"{where}.metric"),
        _number(spec.get("scale", 1.0), f"{where}.scale"),
        _match(spec.get("match", {}), f"{where}.match"),
    )


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ProfileError(f"key {key!r} must be a table")
    return value


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ProfileError(f"key {key!r} must be a non-empty string")
    return value


def _plain(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise ProfileError(f"{where} must be a non-empty string")
    return value


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ProfileError(f"{where} must be a list of metric names")
    return tuple(value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(f"{where} must be a number")
    return float(value)


def _match(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ProfileError(f"{where} must be a table of label = regex")
    return tuple(sorted(value.items()))
