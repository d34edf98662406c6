"""HTTP to Prometheus-compatible servers, Alertmanager and /metrics: auth, TLS, a deadline and a
size cap on every request, and one sentence for every way a server can fail. Secrets never reach
a message: URLs are shown without their userinfo, headers are never echoed, and text from a
server or a library passes through ``redact.text``.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import httpcore
import httpx

from vramtop import redact
from vramtop.clean import one_line
from vramtop.sources.base import SourceError


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


# -- a deadline for the whole request -------------------------------------------------------------
# httpcore's timeouts bound each read, so a server sending a byte a second never times out. Every
# socket operation of a request made under ``_deadline`` gets at most the time that is left.

_local = threading.local()


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    _local.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        _local.deadline = None


def _left(timeout: float | None, exc: type[Exception]) -> float | None:
    deadline = getattr(_local, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise exc("the request's deadline passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: Any = None, timeout: Any = None) -> Any:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, **kw: Any) -> Any:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_tcp(host, port, left, **kw))

    def connect_unix_socket(self, path: str, timeout: float | None = None, **kw: Any) -> Any:
        left = _left(timeout, httpcore.ConnectTimeout)
        return _Stream(self._inner.connect_unix_socket(path, left, **kw))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def _bounded(transport: Any) -> Any:
    """httpx has no public hook for httpcore's network backend: wrap the pool's. A test
    (slow headers, slow body) fails if an httpx upgrade moves it."""
    pool = getattr(transport, "_pool", None)
    if pool is not None and hasattr(pool, "_network_backend"):
        pool._network_backend = _Backend(pool._network_backend)
    return transport


class _Client(httpx.Client):
    """An httpx client whose transports (direct and through proxies) honour ``_deadline``."""

    def _init_transport(self, *args: Any, **kw: Any) -> Any:
        return _bounded(super()._init_transport(*args, **kw))

    def _init_proxy_transport(self, *args: Any, **kw: Any) -> Any:
        return _bounded(super()._init_proxy_transport(*args, **kw))


# -- clients ---------------------------------------------------------------------------------------


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
    # A server may echo what it was sent (an error quoting the Authorization header): every
    # credential given to a client is masked in every message from now on.
    url_password = parts.password or ""
    for secret in (endpoint.bearer_token, url_password, unquote(url_password)):
        redact.remember(secret)
    auth: Any = None
    if endpoint.bearer_token:
        pass  # an explicit token wins over credentials in the URL
    elif endpoint.basic_auth:
        auth = _basic(*endpoint.basic_auth)
    elif parts.username is not None:
        auth = _basic(unquote(parts.username), unquote(url_password))
    headers = dict(endpoint.headers)
    if endpoint.bearer_token:
        headers["Authorization"] = f"Bearer {endpoint.bearer_token}"
    verify: Any = False
    if parts.scheme == "https":
        verify = _tls_context(endpoint.verify_tls, endpoint.ca_file)
    base = urlunsplit(
        (parts.scheme, parts.netloc.rpartition("@")[2], parts.path.rstrip("/"), "", "")
    )
    return _Client(
        base_url=base,
        auth=auth,
        headers=headers,
        verify=verify,
        timeout=httpx.Timeout(endpoint.timeout),
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
        follow_redirects=False,
        event_hooks={"response": [_no_redirects]},
    )


def _basic(user: str, password: str) -> httpx.BasicAuth:
    """Basic auth; the header's base64 form is a secret too (a server may echo the header)."""
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    if password:
        redact.remember(password)
        redact.remember(pair)
    return httpx.BasicAuth(user, password)


# -- one request -----------------------------------------------------------------------------------


@dataclass(frozen=True)
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
    http: httpx.Client,
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
    where = f"{what} at {endpoint.safe_url}"
    be = "are" if what == "metrics" else "is"  # "metrics at URL are ..."
    method = method or ("GET" if data is None and json_body is None else "POST")
    body: dict[str, Any] = {"data": data} if json_body is None else {"json": json_body}
    try:
        with _deadline(endpoint.timeout), http.stream(method, path, params=params, **body) as r:
            if _int(r.headers.get("content-length")) > endpoint.max_bytes:
                raise SourceError(_too_big(where, endpoint))
            chunks, size = [], 0
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > endpoint.max_bytes:
                    raise SourceError(_too_big(where, endpoint))
                chunks.append(chunk)
            return Answer(r.status_code, r.headers, b"".join(chunks))
    except _Redirect as redirect:
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


def get_json(http: httpx.Client, endpoint: Endpoint, path: str, what: str, **kw: Any) -> Any:
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


class _Redirect(Exception):
    def __init__(self, status: int, target: str) -> None:
        super().__init__(status)
        self.status, self.target = status, target


def _no_redirects(resp: httpx.Response) -> None:
    """A response hook: it runs before httpx parses Location, whose errors quote the URL."""
    if resp.status_code not in (301, 302, 303, 307, 308):
        return
    target = resp.headers.get("location", "")
    with contextlib.suppress(ValueError):  # not a valid URL: shown as given (redacted)
        target = urljoin(str(resp.url), target) if target else ""
    raise _Redirect(resp.status_code, target)


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
