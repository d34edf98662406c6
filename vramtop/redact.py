"""Every secret mask in one place: URLs, command lines, and any text that may carry a secret
(error messages from servers and libraries). Command lines are masked where they are read, so no
screen, export or recording ever holds them; messages are masked before they are shown."""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

MASK = "***"
# "tokens" (plural) is a count, as in --max-num-batched-tokens, not a secret.
_SECRET_WORD = (
    r"(?:api[-_]?key|token(?!s)|secret|passw(?:or)?d|passphrase|credential|auth|private[-_]?key)"
)
_SECRET_FLAG = re.compile(rf"^--?[\w.-]*{_SECRET_WORD}[\w.-]*$", re.IGNORECASE)
_SECRET_ASSIGN = re.compile(rf"^([\w.-]*{_SECRET_WORD}[\w.-]*)=(.+)$", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.IGNORECASE)

# Secret values this process was given (tokens, passwords): masked wherever they appear.
_known: set[str] = set()
_known_lock = threading.Lock()


def remember(secret: str | None) -> None:
    """Mask this value in every message from now on (e.g. a server echoing our token)."""
    if secret and len(secret) >= 4:
        with _known_lock:
            _known.add(secret)


def url(value: str) -> str:
    """A URL as it may be shown: no user:password (whatever characters the password holds),
    no query string or fragment (they may carry tokens)."""
    scheme, sep, rest = value.partition("://")
    if not sep:
        return text(value)
    # Userinfo ends at the last "@" before the first whitespace: a password may hold "/", "#", "?".
    rest = rest.split(None, 1)[0] if rest.strip() else ""
    hostpath = rest.rpartition("@")[2]
    hostpath = re.split(r"[?#]", hostpath, maxsplit=1)[0]
    return text(f"{scheme}{sep}{hostpath}".rstrip("/"))


def text(value: object) -> str:
    """Any text with the secrets this process knows and URL credentials masked."""
    out = str(value)
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        out = out.replace(secret, MASK)
    return _URL_USERINFO.sub(rf"\g<1>{MASK}@", out)


def argv(args: Sequence[str]) -> tuple[str, ...]:
    out: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            hide_next = False
            if not arg.startswith("--"):
                out.append(MASK)
                continue
        flag, eq, _ = arg.partition("=")
        if _SECRET_FLAG.match(flag):
            if eq:
                out.append(f"{flag}={MASK}")
            else:
                out.append(arg)
                hide_next = True
            continue
        m = _SECRET_ASSIGN.match(arg)
        if m and not arg.startswith("-"):
            out.append(f"{m.group(1)}={MASK}")
            continue
        out.append(_URL_USERINFO.sub(rf"\g<1>{MASK}@", arg))
    return tuple(out)
