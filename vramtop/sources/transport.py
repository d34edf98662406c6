"""httpx, with a deadline on every socket operation of a request: what vramtop.sources.http's
Client makes on its first request. In a module of its own because httpx and httpcore take
~80 ms to import: a source is built (its settings checked) before the screen, and this import
waits for the source's first request, on its own thread.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urljoin

import httpcore
import httpx

from vramtop.sources.http import Redirect

# -- a deadline for the whole request -------------------------------------------------------------
# httpcore's timeouts bound each read, so a server sending a byte a second never times out. Every
# socket operation of a request made under ``deadline`` gets at most the time that is left.

_local = threading.local()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    _local.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        _local.deadline = None


def _left(timeout: float | None, exc: type[Exception]) -> float | None:
    end = getattr(_local, "deadline", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
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
    """An httpx client whose transports (direct and through proxies) honour ``deadline``."""

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


def build(
    base: str,
    auth: tuple[str, str] | None,
    headers: Mapping[str, str],
    tls: tuple[bool, str | None] | None,
    timeout: float,
) -> httpx.Client:
    """The pooled client of one endpoint: ``tls`` (verify, CA file) for https, else None."""
    return _Client(
        base_url=base,
        auth=httpx.BasicAuth(*auth) if auth else None,
        headers=dict(headers),
        verify=_tls_context(*tls) if tls else False,
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=16),
        follow_redirects=False,
        event_hooks={"response": [_no_redirects]},
    )


def _no_redirects(resp: httpx.Response) -> None:
    """A response hook: it runs before httpx parses Location, whose errors quote the URL."""
    if resp.status_code not in (301, 302, 303, 307, 308):
        return
    target = resp.headers.get("location", "")
    with contextlib.suppress(ValueError):  # not a valid URL: shown as given (redacted)
        target = urljoin(str(resp.url), target) if target else ""
    raise Redirect(resp.status_code, target)
