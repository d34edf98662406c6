"""The shapes of Prometheus API answers: anything else is one sentence, never an internal error
("'int' object has no attribute 'get'") from deep inside a source."""

from __future__ import annotations

import math
from typing import Any

from vramtop.sources.base import SourceError
from vramtop.sources.http import Endpoint


def api_data(body: Any, endpoint: Endpoint, what: str = "Prometheus") -> dict:
    """The ``data`` of a Prometheus API answer: ``{"status": "success", "data": {...}}``."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict) or body.get("status") not in ("success", None):
        raise not_api(endpoint, what)
    return data


def not_api(endpoint: Endpoint, what: str = "Prometheus", api: str = "a Prometheus") -> SourceError:
    return SourceError(
        f"{what} at {endpoint.safe_url} answered JSON that is not {api} API response"
    )


Samples = list[tuple[dict[str, str], float | None]]


def instant(
    body: Any, endpoint: Endpoint, max_series: int, tag: str | None = None, parts: int = 1
) -> list[Samples]:
    """An instant query's samples as (labels, number; None where the value is not one or NaN),
    a scalar as one unlabelled sample; in ``parts`` lists by the value of the label ``tag``
    (popped; a series whose tag is not one of 0 .. parts - 1 is dropped), else in one list.
    One pass over the series: at a fleet's size there are tens of thousands."""
    data = api_data(body, endpoint)
    result = data.get("result")
    if data.get("resultType") not in ("vector", "scalar") or not isinstance(result, list):
        raise not_api(endpoint)
    if len(result) > max_series:
        raise SourceError(
            f"Prometheus at {endpoint.safe_url} answered more than {max_series} series for one "
            "query (max_series): narrow it with --instance or raise max_series"
        )
    out: list[Samples] = [[] for _ in range(parts)]
    if data["resultType"] == "scalar":
        if len(result) != 2:
            raise not_api(endpoint)
        if tag is None:
            out[0].append(({}, number(result[1])))
        return out
    slot = {str(i): out[i].append for i in range(parts)}  # the tags _batch gives
    whole = out[0].append
    for s in result:  # no copy where JSON gave strings
        metric, value = (s.get("metric", {}), s.get("value")) if type(s) is dict else (0, 0)
        if type(metric) is not dict or type(value) is not list or len(value) != 2:
            raise not_api(endpoint)
        for v in metric.values():
            if type(v) is not str:  # keys from JSON are strings; a value may be anything
                metric = {str(k): str(v) for k, v in metric.items()}
                break
        text = value[1]
        try:
            x = float(text)
        except (TypeError, ValueError):
            x = None
        else:
            if x != x:  # NaN: no value
                x = None
        if tag is None:
            whole((metric, x))
        elif (add := slot.get(metric.pop(tag, ""))) is not None:
            add((metric, x))
    return out


def number(text: Any) -> float | None:
    """A sample's value as sent ("1.5", "NaN", "+Inf"): a float, None where it is no number."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def matrix(body: Any, endpoint: Endpoint) -> list[Any]:
    """A range query's series, each ``{"metric": {...}, "values": [[t, "v"], ...]}``."""
    result = api_data(body, endpoint).get("result")
    if not isinstance(result, list) or not all(map(_range_series, result)):
        raise not_api(endpoint)
    return result


def _range_series(s: Any) -> bool:
    values = s.get("values", []) if isinstance(s, dict) else None
    return isinstance(values, list) and all(
        isinstance(v, list) and len(v) == 2 and isinstance(v[0], int | float) for v in values
    )
