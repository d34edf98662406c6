"""Scrape targets: ``--scrape`` URLs plus a hosts file (one URL or ``host:port`` a line)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from vramtop import redact
from vramtop.clean import one_line

# host:port, host a name, IPv4 or bracketed IPv6; the port 1-5 digits.
_HOST_PORT = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}")
_BAD_CHAR = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


class TargetError(ValueError):
    """A hosts file line that names no target; the message is the whole sentence."""


def parse_hosts(text: str, name: str) -> list[str]:
    """The targets of a hosts file as URLs (``host:port`` -> ``http://host:port/metrics``).
    Blank lines and ``#`` comments are skipped; ``name`` is the file as the user gave it."""
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].split("\t#", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        url = _target(line)
        if url is None:
            shown = repr(one_line(redact.text(line), 120))
            raise TargetError(f"{name} line {number}: {shown} is not a URL or host:port")
        out.append(url)
    if not out:
        raise TargetError(f"{name} names no targets (one URL or host:port a line)")
    return out


def _target(line: str) -> str | None:
    if _BAD_CHAR.search(line):
        return None
    if "://" not in line:
        if not _HOST_PORT.fullmatch(line) or int(line.rsplit(":", 1)[1]) > 65535:
            return None
        return f"http://{line}/metrics"
    try:
        parts = urlsplit(line)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.password:
        redact.remember(parts.password)
        redact.remember(unquote(parts.password))
    return line


def combined(*groups: Iterable[str]) -> tuple[str, ...]:
    """Every target once, in the order first given."""
    return tuple(dict.fromkeys(u for g in groups for u in g))
