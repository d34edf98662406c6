"""HTTP to Prometheus-compatible servers, Alertmanager and /metrics: auth, TLS, a deadline and a
size cap on every request, and one sentence for every way a server can fail. Secrets never reach
a message: URLs are shown without their userinfo, headers are never echoed, and text from a
server or a library passes through ``redact.text``.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Mapping
from dataclasses import field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from vramtop import redact
from vramtop.clean import one_line
from vramtop.records import record
from vramtop.sources.base import SourceError

if TYPE_CHECKING:
    import httpx


@record(slots=False)
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


# -- clients ---------------------------------------------------------------------------------------


class Client:
    """One endpoint's pooled HTTP client (vramtop.sources.transport), made on its first
    request: building a source (and checking its settings) imports no httpx. Every credential
    given to a client is masked in every message from its construction on: a server may echo
    what it was sent (an error quoting the Authorization header)."""

    def __init__(self, endpoint: Endpoint) -> None:
        parts = urlsplit(endpoint.url)
        url_password = parts.password or ""
        for secret in (endpoint.bearer_token, url_password, unquote(url_password)):
            redact.remember(secret)
        self._auth: tuple[str, str] | None = None
        if endpoint.bearer_token:
            pass  # an explicit token wins over credentials in the URL
        elif endpoint.basic_auth:
            self._auth = _basic(*endpoint.basic_auth)
        elif parts.username is not None:
            self._auth = _basic(unquote(parts.username), unquote(url_password))
        self.headers = dict(endpoint.headers)
        if endpoint.bearer_token:
            self.headers["Authorization"] = f"Bearer {endpoint.bearer_token}"
        https = parts.scheme == "https"
        self._tls = (endpoint.verify_tls, endpoint.ca_file) if https else None
        self.base_url = urlunsplit(
            (parts.scheme, parts.netloc.rpartition("@")[2], parts.path.rstrip("/"), "", "")
        )
        self._timeout = endpoint.timeout
        self._lock = threading.Lock()
        self._http: Any = None

    def stream(self, method: str, url: str, **kw: Any) -> Any:
        return self._client().stream(method, url, **kw)

    def close(self) -> None:
        with self._lock:
            http, self._http = self._http, None
        if http is not None:
            http.close()

    def _client(self) -> Any:
        with self._lock:
            if self._http is None:
                from vramtop.sources import transport

                self._http = transport.build(
                    self.base_url, self._auth, self.headers, self._tls, self._timeout
                )
            return self._http


def client(endpoint: Endpoint) -> Client:
    """One pooled client per endpoint; credentials in the URL become basic auth."""
    return Client(endpoint)


def _basic(user: str, password: str) -> tuple[str, str]:
    """Basic auth; the header's base64 form is a secret too (a server may echo the header)."""
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    if password:
        redact.remember(password)
        redact.remember(pair)
    return user, password


# -- one request -----------------------------------------------------------------------------------


@record(slots=False)
class Answer:
    """A whole (decoded, capped) response."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    @property
    def text(self) -> str:
        ctype = self.headers.get("content-type", "")
        enc = "utf-8"
        if "charset=" in ctype:
            enc = ctype.split("charset=", 1)[1].split(";")[0].strip().strip('"') or enc
        try:
            return self.content.decode(enc, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")


def fetch(
    http: Client,
    endpoint: Endpoint,
    path: str,
    what: str,
    params: Any = None,
    data: Any = None,
    method: str | None = None,
    json_body: Any = None,
) -> Answer:
    """GET (or POST ``data``; or ``method`` with ``json_body``) ``path``, the whole exchange
    within ``endpoint.timeout`` and the body within ``endpoint.max_bytes``; every failure is a
    SourceError with one sentence.
    ``what`` names the thing asked, as in "Prometheus at URL ..."."""
    import httpx  # its exceptions: imported already by the client's first request

    from vramtop.sources.transport import deadline

    where = f"{what} at {endpoint.safe_url}"
    be = "are" if what == "metrics" else "is"  # "metrics at URL are ..."
    method = method or ("GET" if data is None and json_body is None else "POST")
    body: dict[str, Any] = {"data": data} if json_body is None else {"json": json_body}
    try:
        with deadline(endpoint.timeout), http.stream(method, path, params=params, **body) as r:
            if _int(r.headers.get("content-length")) > endpoint.max_bytes:
                raise SourceError(_too_big(where, endpoint))
            chunks, size = [], 0
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > endpoint.max_bytes:
                    raise SourceError(_too_big(where, endpoint))
                chunks.append(chunk)
            return Answer(r.status_code, r.headers, b"".join(chunks))
    except Redirect as redirect:
        target = redirect.target
        shown = one_line(redact.url(target), 200) if target else "an unnamed place"
        raise SourceError(
            f"{where} answered with a redirect (HTTP {redirect.status}) to {shown}, "
            "which vramtop does not follow: use that URL instead"
        ) from None
    except httpx.TimeoutException:
        raise SourceError(f"{where} did not answer within {endpoint.timeout:g} s") from None
    except httpx.ConnectError as err:
        raise SourceError(f"{where} {be} unreachable ({_reason(err)})") from None
    except httpx.DecodingError:
        raise SourceError(
            f"{where} sent a compressed body that does not decompress (bad gzip or deflate data)"
        ) from None
    except httpx.RemoteProtocolError as err:
        if "without sending a response" in str(err):
            raise SourceError(f"{where} closed the connection without answering") from None
        raise SourceError(f"{where} cut the connection before its answer was complete") from None
    except (httpx.ReadError, httpx.WriteError) as err:
        raise SourceError(f"{where} broke off the connection mid-answer ({_reason(err)})") from None
    except httpx.LocalProtocolError:
        # The library's text may quote a header value (a token): never show it.
        raise SourceError(
            f"{where} could not be asked: a header value is not valid HTTP "
            "(check the bearer token and --header values)"
        ) from None
    except httpx.HTTPError as err:
        raise SourceError(f"{where} failed: {_reason(err)}") from None


def get_json(http: Client, endpoint: Endpoint, path: str, what: str, **kw: Any) -> Any:
    """GET or POST (``data=``) a JSON API; every failure is a SourceError with one sentence."""
    where = f"{what} at {endpoint.safe_url}"
    resp = fetch(http, endpoint, path, what, params=kw.get("params"), data=kw.get("data"))
    if resp.status_code in (401, 403):
        raise SourceError(
            f"{where} refused access (HTTP {resp.status_code}): check the token or password"
        )
    ctype = resp.headers.get("content-type", "")
    if "html" in ctype or resp.content.lstrip()[:1] == b"<":
        raise SourceError(
            f"{where} answered with an HTML page (HTTP {resp.status_code}), not its API: "
            "a proxy or login page in the way, or the wrong URL"
        )
    if not resp.content.strip():
        if resp.status_code >= 400:
            raise SourceError(f"{where} answered HTTP {resp.status_code}")
        raise SourceError(f"{where} answered HTTP {resp.status_code} with an empty body")
    try:
        body = json.loads(resp.content)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise SourceError(
            f"{where} answered HTTP {resp.status_code} with something that is not JSON"
        ) from None
    if isinstance(body, dict) and body.get("status") == "error":
        reason = body.get("error") or body.get("errorType")
        raise QueryError(f"{where} rejected a query: {safe_text(reason)}")
    if resp.status_code >= 400:
        raise SourceError(f"{where} answered HTTP {resp.status_code}")
    return body


def safe_text(value: object, limit: int = 200) -> str:
    """Text from a server or a library, as a message may show it: one line, short, redacted."""
    return one_line(redact.text(value), limit)


class QueryError(SourceError):
    """The server is fine but refused this one query (bad PromQL, unknown function)."""


class Redirect(Exception):
    """Raised by the client's response hook (transport): vramtop follows no redirect."""

    def __init__(self, status: int, target: str) -> None:
        super().__init__(status)
        self.status, self.target = status, target


def _too_big(where: str, endpoint: Endpoint) -> str:
    n = endpoint.max_bytes
    size = next(
        (
            f"{n // u:g} {name}"
            for u, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))
            if n % u == 0
        ),
        f"{n} bytes",
    )
    return (
        f"{where} sent more than {size} (max_response_bytes): raise max_response_bytes "
        "(config or VRAMTOP_MAX_RESPONSE_BYTES) or ask for less"
    )


def _int(text: str | None) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return 0


def _reason(err: Exception) -> str:
    text = safe_text(err, 160)
    for known in ("Connection refused", "Name or service not known", "certificate verify failed"):
        if known.lower() in text.lower():
            return known[0].lower() + known[1:]
    return text or type(err).__name__
