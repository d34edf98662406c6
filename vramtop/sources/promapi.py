"""The shapes of Prometheus API answers: anything else is one sentence, never an internal error
("'int' object has no attribute 'get'") from deep inside a source."""

from __future__ import annotations

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


def instant(body: Any, endpoint: Endpoint, max_series: int) -> list[tuple[dict[str, str], Any]]:
    """An instant query's samples as (labels, value as sent); a scalar is one unlabelled one."""
    data = api_data(body, endpoint)
    result = data.get("result")
    if data.get("resultType") not in ("vector", "scalar") or not isinstance(result, list):
        raise not_api(endpoint)
    if len(result) > max_series:
        raise SourceError(
            f"Prometheus at {endpoint.safe_url} answered more than {max_series} series for one "
            "query (max_series): narrow it with --instance or raise max_series"
        )
    if data["resultType"] == "scalar":
        if len(result) != 2:
            raise not_api(endpoint)
        return [({}, result[1])]
    out = []
    append = out.append
    for s in result:  # tens of thousands at a fleet's size: no copy where JSON gave strings
        metric, value = (s.get("metric", {}), s.get("value")) if type(s) is dict else (0, 0)
        if type(metric) is not dict or type(value) is not list or len(value) != 2:
            raise not_api(endpoint)
        for v in metric.values():
            if type(v) is not str:  # keys from JSON are strings; a value may be anything
                metric = {str(k): str(v) for k, v in metric.items()}
                break
        append((metric, value[1]))
    return out


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
