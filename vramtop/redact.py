"""Secrets in command lines (``--api-key X``, ``HF_TOKEN=...``, ``scheme://user:pass@host``)
are masked where they are read, so no screen, export or recording ever holds them."""

from __future__ import annotations

import re
from collections.abc import Sequence

MASK = "***"
# "tokens" (plural) is a count, as in --max-num-batched-tokens, not a secret.
_SECRET_WORD = (
    r"(?:api[-_]?key|token(?!s)|secret|passw(?:or)?d|passphrase|credential|auth|private[-_]?key)"
)
_SECRET_FLAG = re.compile(rf"^--?[\w.-]*{_SECRET_WORD}[\w.-]*$", re.IGNORECASE)
_SECRET_ASSIGN = re.compile(rf"^([\w.-]*{_SECRET_WORD}[\w.-]*)=(.+)$", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.IGNORECASE)


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
