"""Firing and pending alerts from Prometheus ``/api/v1/alerts`` and, when given, Alertmanager
``/api/v2/alerts`` (which knows silences and inhibitions). One alert seen by both is one row."""

from __future__ import annotations

import re
from datetime import datetime
from types import MappingProxyType
from typing import Any

from vramtop.links import is_web
from vramtop.model import AlertReading, alert_order
from vramtop.records import record
from vramtop.sources.base import SourceError
from vramtop.sources.http import Endpoint, client, get_json
from vramtop.sources.promapi import api_data, not_api

# Labels that differ between Prometheus and Alertmanager copies of one alert.
_NOT_IDENTITY = {"alertstate", "prometheus", "prometheus_replica", "replica", "__replica__"}


@record
class AlertsReading:
    alerts: tuple[AlertReading, ...]
    note: str = ""


class AlertSource:
    name = "alerts"

    def __init__(
        self,
        prometheus: Endpoint | None,
        alertmanager: Endpoint | None = None,
        instance: str | None = None,
        match: tuple[tuple[str, str, str], ...] = (),
    ) -> None:
        """``instance`` and ``match`` keep the alerts of the chosen hosts, as they scope the
        queries; an alert without the label is kept (it may be about the whole fleet)."""
        self._prom = prometheus
        self._am = alertmanager
        self._prom_http = client(prometheus) if prometheus else None
        self._am_http = client(alertmanager) if alertmanager else None
        self._instance = re.compile(instance) if instance else None
        self._match = [(label, op, re.compile(v) if "~" in op else v) for label, op, v in match]

    def close(self) -> None:
        for http in (self._prom_http, self._am_http):
            if http is not None:
                http.close()

    def poll(self) -> AlertsReading:
        found: dict[tuple, AlertReading] = {}
        errors: list[str] = []
        if self._prom_http is not None and self._prom is not None:
            try:
                body = get_json(self._prom_http, self._prom, "/api/v1/alerts", "Prometheus")
                raws = api_data(body, self._prom).get("alerts", [])
                if not isinstance(raws, list) or not all(map(_is_alert, raws)):
                    raise not_api(self._prom)
                for raw in raws:
                    _add(found, _from_prometheus(raw))
            except SourceError as err:
                errors.append(err.reason)
        if self._am_http is not None and self._am is not None:
            try:
                body = get_json(self._am_http, self._am, "/api/v2/alerts", "Alertmanager")
                if not isinstance(body, list) or not all(map(_is_alert, body)):
                    raise not_api(self._am, "Alertmanager", "an Alertmanager v2")
                for raw in body:
                    _add(found, _from_alertmanager(raw))
            except SourceError as err:
                errors.append(err.reason)
        asked = (self._prom_http is not None) + (self._am_http is not None)
        if errors and len(errors) == asked:
            raise SourceError("; ".join(errors))
        alerts = [a for a in found.values() if self._wanted(a)]
        alerts.sort(key=alert_order)
        return AlertsReading(tuple(alerts), "; ".join(errors))

    def _wanted(self, alert: AlertReading) -> bool:
        instance = alert.labels.get("instance")
        if not (
            self._instance is None or instance is None or bool(self._instance.fullmatch(instance))
        ):
            return False
        return all(
            label not in alert.labels or _matches(alert.labels[label], op, want)
            for label, op, want in self._match
        )


def _matches(value: str, op: str, want: str | re.Pattern[str]) -> bool:
    """A PromQL label matcher on one value: =, !=, and the fully anchored =~, !~."""
    if isinstance(want, re.Pattern):
        return bool(want.fullmatch(value)) == (op == "=~")
    return (value == want) == (op == "=")


def _identity(labels: dict[str, str]) -> tuple:
    return tuple(sorted((k, v) for k, v in labels.items() if k not in _NOT_IDENTITY))


def _add(found: dict[tuple, AlertReading], alert: AlertReading | None) -> None:
    if alert is None:
        return
    key = _identity(dict(alert.labels))
    old = found.get(key)
    if old is None:
        found[key] = alert
        return
    # Alertmanager knows silences; Prometheus knows pending. Keep the most informative view.
    found[key] = AlertReading(
        name=old.name,
        severity=old.severity,
        state="firing" if "firing" in (old.state, alert.state) else old.state,
        summary=old.summary or alert.summary,
        labels=old.labels,
        active_since=min(
            (t for t in (old.active_since, alert.active_since) if t is not None), default=None
        ),
        silenced=old.silenced or alert.silenced,
        source="prometheus+alertmanager",
        runbook_url=old.runbook_url or alert.runbook_url,
    )


def _is_alert(raw: Any) -> bool:
    """The shape both APIs give an alert: an object whose labels (and annotations) are objects."""
    return (
        isinstance(raw, dict)
        and isinstance(raw.get("labels"), dict)
        and isinstance(raw.get("annotations", {}), dict)
    )


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _labels(raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items()}


def _summary(annotations: Any) -> str:
    a = _labels(annotations)
    return a.get("summary") or a.get("description") or a.get("message") or ""


def _runbook(annotations: Any) -> str | None:
    """The ``runbook_url`` annotation where it is an http(s) URL; anything else is dropped."""
    url = _labels(annotations).get("runbook_url", "").strip()
    return url if is_web(url) else None


def _from_prometheus(raw: Any) -> AlertReading | None:
    if not isinstance(raw, dict):
        return None
    labels = _labels(raw.get("labels"))
    state = _text(raw.get("state"))
    if state not in ("firing", "pending"):
        return None  # inactive alerts are not news
    return AlertReading(
        name=labels.get("alertname", "?"),
        severity=labels.get("severity", "none"),
        state=state,
        summary=_summary(raw.get("annotations")),
        labels=MappingProxyType(labels),
        active_since=parse_time(raw.get("activeAt")),
        silenced=False,
        source="prometheus",
        runbook_url=_runbook(raw.get("annotations")),
    )


def _from_alertmanager(raw: Any) -> AlertReading | None:
    if not isinstance(raw, dict):
        return None
    labels = _labels(raw.get("labels"))
    status = raw.get("status") if isinstance(raw.get("status"), dict) else {}
    muted = status.get("state") == "suppressed" or bool(
        status.get("silencedBy") or status.get("inhibitedBy")
    )
    return AlertReading(
        name=labels.get("alertname", "?"),
        severity=labels.get("severity", "none"),
        state="firing",
        summary=_summary(raw.get("annotations")),
        labels=MappingProxyType(labels),
        active_since=parse_time(raw.get("startsAt")),
        silenced=muted,
        source="alertmanager",
        runbook_url=_runbook(raw.get("annotations")),
    )


def parse_time(text: Any) -> float | None:
    """RFC 3339 as both servers write it (nanoseconds and ``Z`` included) -> epoch seconds."""
    if not isinstance(text, str) or not text or text.startswith("0001-01-01"):
        return None
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text.strip())
    if not m:
        return None
    base = datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) == "Z" else m.group(3)))
    return base.timestamp() + (float(m.group(2)) if m.group(2) else 0.0)
