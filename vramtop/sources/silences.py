"""Alertmanager silences through its v2 API: create (POST /api/v2/silences), list the active
ones (GET /api/v2/silences) and expire one (DELETE /api/v2/silence/{id}), with the same auth,
TLS, headers and limits as the alert source. Every failure is a SourceError with one sentence
that never holds a secret; a 400 carries Alertmanager's own reason."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from vramtop.model import SilenceMatcher, SilenceReading
from vramtop.records import record
from vramtop.silencing import MAX_KEPT, SilenceError
from vramtop.sources.alerts import parse_time
from vramtop.sources.base import SourceError
from vramtop.sources.http import Endpoint, client, fetch, safe_text

# -- the client ----------------------------------------------------------------------------------


def rfc3339(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@record
class SilencesReading:
    silences: tuple[SilenceReading, ...]
    note: str = ""


class SilenceClient:
    """One Alertmanager's silences. Blocking: call it from a worker, never the UI thread."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._http = client(endpoint)
        self._where = f"Alertmanager at {endpoint.safe_url}"

    def close(self) -> None:
        self._http.close()

    def create(
        self,
        matchers: tuple[SilenceMatcher, ...],
        seconds: float,
        created_by: str,
        comment: str,
        now: float | None = None,
    ) -> str:
        """The new silence's id."""
        if not comment.strip():
            raise SilenceError("a comment is required: say why the alert is silenced")
        start = time.time() if now is None else now
        body = {
            "matchers": [
                {"name": m.name, "value": m.value, "isRegex": m.is_regex, "isEqual": m.is_equal}
                for m in matchers
            ],
            "startsAt": rfc3339(start),
            "endsAt": rfc3339(start + seconds),
            "createdBy": created_by,
            "comment": comment,
        }
        answer = self._call("POST", "/api/v2/silences", "create the silence", body)
        sid = answer.get("silenceID") if isinstance(answer, dict) else None
        if not isinstance(sid, str) or not sid:
            raise SourceError(f"{self._where} accepted the silence but sent back no silence ID")
        return sid

    def active(self) -> tuple[SilenceReading, ...]:
        """The active silences, the newest end last (at most MAX_KEPT)."""
        raw = self._call("GET", "/api/v2/silences", "list silences")
        if not isinstance(raw, list):
            raise SourceError(
                f"{self._where} sent silences that are not a list: not an Alertmanager v2"
            )
        out = [s for s in map(_silence, raw) if s is not None]
        out.sort(key=lambda s: (s.ends_at or 0.0, s.id))
        return tuple(out[:MAX_KEPT])

    def expire(self, silence_id: str) -> None:
        self._call("DELETE", f"/api/v2/silence/{quote(silence_id, safe='')}", "expire the silence")

    def _call(self, method: str, path: str, doing: str, body: Any = None) -> Any:
        answer = fetch(
            self._http, self.endpoint, path, "Alertmanager", method=method, json_body=body
        )
        code = answer.status_code
        if code in (401, 403):
            raise SourceError(
                f"{self._where} refused to {doing} (HTTP {code}): check the token or password"
            )
        text = answer.text.strip()
        if code >= 400:
            reason = _reason(text)
            if code == 400:
                raise SourceError(f"{self._where} refused to {doing}: {reason or 'bad request'}")
            if method == "DELETE" and (code == 404 or "not found" in reason.lower()):
                raise SourceError(f"{self._where} has no such silence (HTTP 404): {reason}")
            tail = f": {reason}" if reason else ""
            raise SourceError(f"{self._where} could not {doing} (HTTP {code}){tail}")
        if not text:
            return None
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            raise SourceError(
                f"{self._where} answered HTTP {code} with something that is not JSON"
            ) from None


def _reason(text: str) -> str:
    """Alertmanager's error body: a JSON string, an object with a message, or plain text."""
    if text.startswith("<"):
        return "an HTML page (a proxy or login page in the way)"
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        body = text
    if isinstance(body, dict):
        body = body.get("message") or body.get("error") or json.dumps(body)
    return safe_text(body)


def _silence(raw: Any) -> SilenceReading | None:
    """An active silence from the API, or None (expired, pending, or not a silence)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        return None
    status = raw.get("status")
    if not isinstance(status, dict) or status.get("state") != "active":
        return None
    matchers = []
    for m in raw.get("matchers") or ():
        if not isinstance(m, dict):
            continue
        name, value = m.get("name"), m.get("value")
        if isinstance(name, str) and isinstance(value, str):
            regex, equal = m.get("isRegex") is True, m.get("isEqual") is not False
            matchers.append(SilenceMatcher(name, value, regex, equal))
    return SilenceReading(
        id=raw["id"],
        matchers=tuple(matchers),
        created_by=raw.get("createdBy") if isinstance(raw.get("createdBy"), str) else "",
        comment=raw.get("comment") if isinstance(raw.get("comment"), str) else "",
        starts_at=parse_time(raw.get("startsAt")),
        ends_at=parse_time(raw.get("endsAt")),
    )


class SilenceSource:
    """The active silences, once a frame, for the Frame (and the exports)."""

    name = "silences"

    def __init__(self, endpoint: Endpoint) -> None:
        self.client = SilenceClient(endpoint)

    def poll(self) -> SilencesReading:
        return SilencesReading(self.client.active())

    def close(self) -> None:
        self.client.close()
