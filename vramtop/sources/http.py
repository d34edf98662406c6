"""HTTP to Prometheus-compatible servers and Alertmanager: auth, TLS, timeouts, and one sentence
for every way a server can fail. Secrets never reach a message: URLs are shown without their
userinfo, and headers are never echoed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from vramtop import redact
from vramtop.sources.base import SourceError, one_line


@dataclass(frozen=True)
class Endpoint:
    """Where a server is and how to talk to it. ``repr`` hides credentials."""

    url: str
    bearer_token: str | None = field(default=None, repr=False)
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    ca_file: str | None = None
    verify_tls: bool = True
    timeout: float = 5.0  # the whole request, connect to last byte
    max_bytes: int = 64 * 2**20  # the largest body read; more is an error naming the cap

    @property
    def safe_url(self) -> str:
        return redact.url(self.url)


@functools.lru_cache(maxsize=8)
def _tls_context(verify: bool, ca_file: str | None) -> Any:
    """Building a context loads the CA bundle (~50 ms): do it once, not per client. Plain
    http:// needs none at all."""
    if not verify:
        return False
    import ssl

    if ca_file:
        return ssl.create_default_context(cafile=ca_file)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def client(endpoint: Endpoint) -> httpx.Client:
    """One pooled client per endpoint; credentials in the URL become basic auth."""
    parts = urlsplit(endpoint.url)
    auth: Any = None
    if endpoint.bearer_token:
        pass  # an explicit token wins over credentials in the URL
    elif endpoint.basic_auth:
        auth = httpx.BasicAuth(*endpoint.basic_auth)
    elif parts.username is not None:
        auth = httpx.BasicAuth(parts.username, parts.password or "")
    headers = dict(endpoint.headers)
    if endpoint.bearer_token:
        headers["Authorization"] = f"Bearer {endpoint.bearer_token}"
    verify: Any = False
    if parts.scheme == "https":
        verify = _tls_context(endpoint.verify_tls, endpoint.ca_file)
    base = urlunsplit(
        (parts.scheme, parts.netloc.rpartition("@")[2], parts.path.rstrip("/"), "", "")
    )
    return httpx.Client(
        base_url=base,
        auth=auth,
        headers=headers,
        verify=verify,
        timeout=httpx.Timeout(endpoint.timeout),
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
        follow_redirects=False,
    )


def get_json(http: httpx.Client, endpoint: Endpoint, path: str, what: str, **kw: Any) -> Any:
    """GET or POST (``data=``) a JSON API; every failure is a SourceError with one sentence."""
    where = f"{what} at {endpoint.safe_url}"
    try:
        if "data" in kw:
            resp = http.post(path, data=kw["data"])
        else:
            resp = http.get(path, params=kw.get("params"))
    except httpx.TimeoutException:
        raise SourceError(f"{where} did not answer within {endpoint.timeout:g} s") from None
    except httpx.ConnectError as err:
        raise SourceError(f"{where} is unreachable ({_reason(err)})") from None
    except httpx.HTTPError as err:
        raise SourceError(f"{where} failed: {_reason(err)}") from None
    if resp.status_code in (401, 403):
        raise SourceError(
            f"{where} refused access (HTTP {resp.status_code}): check the token or password"
        )
    ctype = resp.headers.get("content-type", "")
    if "html" in ctype or resp.text.lstrip()[:1] == "<":
        raise SourceError(
            f"{where} answered with an HTML page (HTTP {resp.status_code}), not its API: "
            "a proxy or login page in the way, or the wrong URL"
        )
    try:
        body = resp.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SourceError(
            f"{where} answered HTTP {resp.status_code} with something that is not JSON"
        ) from None
    if isinstance(body, dict) and body.get("status") == "error":
        raise QueryError(
            f"{where} rejected a query: {one_line(body.get('error') or body.get('errorType'))}"
        )
    if resp.status_code >= 400:
        raise SourceError(f"{where} answered HTTP {resp.status_code}")
    return body


class QueryError(SourceError):
    """The server is fine but refused this one query (bad PromQL, unknown function)."""


def _reason(err: Exception) -> str:
    text = one_line(err, 160)
    for known in ("Connection refused", "Name or service not known", "certificate verify failed"):
        if known.lower() in text.lower():
            return known[0].lower() + known[1:]
    return text or type(err).__name__
