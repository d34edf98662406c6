"""Secrets and files given to vramtop: read without blocking or unbounded work, checked before
any request (a token with a line break must not reach the HTTP library, whose error would print
it), and never echoed: every message names where a value came from, not the value."""

from __future__ import annotations

import os
import re
import select
import stat
import time
from typing import Any

from vramtop.config import ConfigError, Refused

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NOT_VISIBLE_ASCII = re.compile(r"[^\x21-\x7e]")


def problem(value: str, *, ascii_only: bool, spaces: bool) -> str | None:
    """What makes ``value`` unfit for an HTTP header, as a phrase; None when it is fine.
    Header values and bearer tokens are sent as ASCII (httpx encodes str headers as ASCII);
    a basic-auth password may be any UTF-8 without control characters (it travels base64)."""
    if _CONTROL.search(value):
        return "a line break, tab or other control character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # bytes that were not UTF-8, kept by surrogateescape
        return "bytes that are not UTF-8 text"
    if not spaces and " " in value:
        return "a space"
    if ascii_only and _NOT_VISIBLE_ASCII.search(value.replace(" ", "")):
        return "a character outside printable ASCII"
    return None


class _Why(Exception):
    """Why a file could not be read; each caller puts it in its own sentence."""


def read_regular(path: str | os.PathLike[str], what: str, limit: int = 2**20) -> bytes:
    """The bytes of a regular file, or ConfigError. Opened without blocking, so a FIFO with no
    writer, a directory or a device is one sentence instead of a hang."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read {what} ({err.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISCHR(mode) and os.path.realpath(path) == os.devnull:
            return b""  # --config /dev/null: no file layer, as usual
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file"
            raise _Why(f"it is {kind}")
        return _read(fd, limit, timeout=None)
    except _Why as why:
        raise ConfigError(f"{path}: cannot read {what}: {why}") from None
    finally:
        os.close(fd)


def read_secret(
    path: str | os.PathLike[str], what: str, timeout: float = 2.0, limit: int = 2**16
) -> bytes:
    """A token or password file: a regular file, or a pipe (``--bearer-token-file <(pass x)``)
    read within ``timeout``; a pipe with no writer is a sentence, not a hang."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise ConfigError(f"cannot read the {what} {path}: {err.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            return _read(fd, limit, timeout=None)
        if stat.S_ISFIFO(mode):
            return _read(fd, limit, timeout=timeout)
        kind = "a directory" if stat.S_ISDIR(mode) else "neither a regular file nor a pipe"
        raise _Why(f"it is {kind}")
    except _Why as why:
        raise ConfigError(f"cannot read the {what} {path}: {why}") from None
    finally:
        os.close(fd)


def _read(fd: int, limit: int, timeout: float | None) -> bytes:
    """Up to ``limit`` bytes; with a timeout (a pipe), the whole read ends by then."""
    deadline = None if timeout is None else time.monotonic() + timeout
    chunks: list[bytes] = []
    size = 0
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise _Why(f"nothing came within {timeout:g} s")
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            continue
        except OSError as err:
            raise _Why(err.strerror) from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise _Why(f"it is larger than {limit // 1024} KiB")


def headers(value: Any) -> tuple[tuple[str, str], ...]:
    """Header names are HTTP tokens; values printable ASCII on one line. A refusal names the
    header, never its value; a credential-looking value is remembered for masking."""
    from vramtop import redact

    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = [tuple(v.split(":", 1)) if ":" in str(v) else (v, None) for v in value]
    else:
        raise ValueError(value)
    out = []
    for name, val in items:
        label = redact.cut(repr(redact.text(str(name).strip())), 60)
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9-]+", name.strip()):
            raise Refused(
                f"must be 'NAME: VALUE' with a name of letters, digits and dashes, got {label}"
            )
        if not isinstance(val, str):
            raise Refused(f"must be 'NAME: VALUE', got header {label} with no value")
        val = val.strip()
        if why := problem(val, ascii_only=True, spaces=True):
            raise Refused(
                f"names header {label}, whose value holds {why} (not shown); "
                "a header value must be printable ASCII on one line"
            )
        if redact.is_secret_name(name) or name.strip().lower().endswith("authorization"):
            redact.remember(val)
            redact.remember(val.partition(" ")[2])  # the credential after "Bearer "/"Basic "
        out.append((name.strip(), val))
    return tuple(out)
