"""Every secret mask in one place: URLs, command lines, and any text that may carry a secret
(error messages from servers and libraries). Command lines are masked where they are read, so no
screen, export or recording ever holds them; messages are masked before they are shown.

Masking goes by rule, not by a list of flags, and the same rules apply inside one string (an
``sh -c "..."`` entry point) as across argv elements:

- an option or ``NAME=value`` / ``NAME: value`` / ``"NAME": "value"`` whose name suggests a
  credential hides its value (names are split into words: ``--max-num-batched-tokens`` is a
  count, ``--ssl-keyfile`` and ``--api-key-file`` are paths, ``--tokenizer`` is a model);
- ``Bearer``/``Basic``/``Token`` credentials, well-known token prefixes (``sk-``, ``hf_``,
  ``ghp_``, ``AKIA``, JWTs...) and URL userinfo, wherever they sit;
- values this process was given (``remember``), wherever they appear.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from functools import lru_cache

MASK = "***"
LIMIT = 200  # the most characters of an outside value echoed back in a message

# Words that make a name a credential wherever they sit in it (PGPASSWORD, GITHUBTOKEN).
# "tokens" is a count (--max-num-batched-tokens) and "tokenizer" a model, not secrets.
_STRONG = re.compile(
    r"passw(?:or)?d|passphrase|secret|token(?!s|i[sz])|api_?key|credential|authori[sz]ation"
    r"|cookie|bearer|private_?key|access_?key|session_?(?:id|key)",
    re.IGNORECASE,
)
# Words that count only as a whole word of the name (--key, DB_PASS, --auth, X-Auth-User).
_WEAK = {"key", "auth", "pwd", "pass", "pw", "creds", "cred", "session", "jwt", "sig", "apikey"}
# A name with one of these words is a path, a size or a label, not the secret itself.
_QUALIFIERS = {
    "file", "path", "dir", "len", "length", "size", "count", "num", "max", "min", "limit",
    "budget", "timeout", "ttl", "name", "type", "dtype", "mode", "format", "env", "var",
    "url", "uri", "host", "port", "user", "username",
}  # fmt: skip


def is_secret_name(name: str) -> bool:
    """Whether an option, variable or header named ``name`` carries a credential."""
    name = name.strip().lstrip("-")
    if not name:
        return False
    words = [w.lower() for w in re.split(r"[-_.\s]+|(?<=[a-z])(?=[A-Z])", name) if w]
    if any(w in _QUALIFIERS for w in words):
        return False
    if any(w in _WEAK for w in words):
        return True
    return bool(_STRONG.search(name.replace("-", "_").replace(".", "_")))


_PREFIXES = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"sk-(?:ant-|proj-|svcacct-)?[A-Za-z0-9_-]{8,}"  # OpenAI, Anthropic
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{8,}"  # Stripe
    r"|hf_[A-Za-z0-9]{6,}"  # Hugging Face
    r"|gh[pousr]_[A-Za-z0-9]{8,}|github_pat_[A-Za-z0-9_]{8,}"  # GitHub
    r"|glpat-[A-Za-z0-9_-]{8,}"  # GitLab
    r"|xox[abposr]-[A-Za-z0-9-]{8,}"  # Slack
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}"  # AWS access key ids
    r"|AIza[A-Za-z0-9_-]{20,}"  # Google
    r"|gsk_[A-Za-z0-9]{8,}|r8_[A-Za-z0-9]{8,}|npm_[A-Za-z0-9]{8,}|pypi-AgE[A-Za-z0-9_-]{8,}"
    r"|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"  # JWT
    r")"
)
# Authorization schemes; "Token" only with a value that looks like one (not "Token expired").
_SCHEME = re.compile(
    r"\b(?:(?i:bearer|basic)\s+[^\s'\"]+|(?i:token)\s+(?=[^\s'\"]*[0-9_])[^\s'\"]{8,})"
)
# scheme://user:password@ -- the password may hold "/", "#", "?" or "@": up to the last "@".
# Lengths are bounded so hostile text (a 1 MB error body) costs linear time, not quadratic.
_URL_USERINFO = re.compile(
    r"(?<![a-z0-9+.-])([a-z][a-z0-9+.-]{0,30}://)([^\s'\"<>]{0,1024})@", re.IGNORECASE
)
# user:password@host with no scheme (redis-cli -u, DSNs); "/" ends it (registry:5000/img@sha).
_BARE_USERINFO = re.compile(r"(?<![\w.:/-])([\w.-]{1,128}):[^\s@/'\"]{1,1024}@(?=[\w.\[-])")
# A name before "=", ": " or a quoted "name": -- the value is parsed by _value_end.
_NAME = re.compile(
    r"(?<![\w.])(?P<q>[\"']?)(?P<name>[A-Za-z_][\w.-]{0,127})(?P=q)(?P<sep>\s*=(?!=)\s*|\s*:\s+|(?<=[\"']):\s*)"
)
# 'X-API-Key:abc' quoted inside a string (curl -H in an sh -c entry point).
_QUOTED_HEADER = re.compile(r"(?<![\w-])(['\"])([A-Za-z][\w-]*):([^'\"\r\n]*)\1")
_FLAG_THEN_VALUE = re.compile(r"(?<![\w.])(--?[A-Za-z][\w.-]{0,127})(\s+)(?=[^\s-])")
_SCHEME_MASKED = re.compile(rf"(?i:bearer|basic|token) {re.escape(MASK)}")
_HEADER_END = re.compile(r"[\r\n'\"]")
_VALUE_END = re.compile(r"[\s'\"&;]")
_USER_FLAG = {"-u", "--user", "-U", "--proxy-user"}  # curl/wget: USER:PASSWORD

# Secret values this process was given (tokens, passwords): masked wherever they appear.
_known: set[str] = set()
_known_lock = threading.Lock()


def remember(secret: str | None) -> None:
    """Mask this value in every message from now on (e.g. a server echoing our token)."""
    scheme, _, credential = (secret or "").strip().partition(" ")
    if credential and scheme.lower() in ("bearer", "basic", "token"):
        secret = credential  # the scheme is no secret, and "Bearer ***" says more than "***"
    if secret and len(secret.strip()) >= 4:
        with _known_lock:
            _known.add(secret.strip())


def cut(value: str, limit: int = LIMIT) -> str:
    """At most ``limit`` characters, a long value ending in an ellipsis."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def url(value: object) -> str:
    """A URL as it may be shown: no userinfo whatever characters the password holds (everything
    up to the last "@" goes), no query string or fragment, no non-numeric "port" (a password
    without a host: ``http://alice:secret``). Works on any shape, URL or not."""
    s = str(value).strip()
    scheme, sep, rest = s.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        scheme, sep, rest = "", "", s
    _, at, rest = rest.rpartition("@")
    rest = re.split(r"[?#\s]", rest, maxsplit=1)[0]
    netloc, slash, path = rest.partition("/")
    host, colon, port = netloc.rpartition(":")
    if not at and colon and not port.isdigit() and not netloc.endswith("]"):
        netloc = f"{host}:{MASK}"
    return text(f"{scheme}{sep}{netloc}{slash}{path}".rstrip("/"))


def text(value: object) -> str:
    """Any text with the secrets this process knows and every secret-shaped value masked."""
    out = str(value)
    with _known_lock:
        known = sorted(_known, key=len, reverse=True)
    for secret in known:
        if secret in out:
            out = out.replace(secret, MASK)
    return _mask_string(out)


def argv(args: Sequence[str]) -> tuple[str, ...]:
    """A process command line, masked element by element and inside each element."""
    out: list[str] = []
    hide_next = user_next = False
    for arg in args:
        if hide_next and arg and not arg.startswith("-"):
            out.append(MASK)
        elif user_next and ":" in arg and "@" not in arg:
            out.append(arg.partition(":")[0] + ":" + MASK)
        else:
            out.append(_mask_element(arg))
        hide_next = arg.startswith("-") and "=" not in arg and is_secret_name(arg)
        user_next = arg in _USER_FLAG
    return tuple(out)


@lru_cache(maxsize=4096)  # a pure function; processes of one server repeat most elements
def _mask_element(arg: str) -> str:
    # --db-password=VALUE: everything after "=" is the value, spaces included.
    flag, eq, _ = arg.partition("=")
    if eq and flag.startswith("-") and " " not in flag and is_secret_name(flag):
        return f"{flag}={MASK}"
    # A header on its own ("X-API-Key:abc", after -H): the whole rest is the value.
    m = re.fullmatch(r"([A-Za-z][\w-]*)\s*:\s*(\S.*)", arg, re.DOTALL)
    if m and "://" not in arg and is_secret_name(m.group(1)):
        return f"{m.group(1)}: {MASK}"
    return _mask_string(arg)


def _mask_string(s: str) -> str:
    if not s:
        return s
    s = _URL_USERINFO.sub(_userinfo, s)
    s = _BARE_USERINFO.sub(rf"\g<1>:{MASK}@", s)
    s = _SCHEME.sub(lambda m: m.group(0).split(None, 1)[0] + " " + MASK, s)
    s = _PREFIXES.sub(MASK, s)
    s = _QUOTED_HEADER.sub(_quoted_header, s)
    s = _named_values(s)
    return _flag_values(s)


def _userinfo(m: re.Match[str]) -> str:
    info = m.group(2)
    if "/" in info and ":" not in info:
        return m.group(0)  # http://host/path@x: an "@" in the path, not userinfo
    user, colon, _ = info.partition(":")
    return f"{m.group(1)}{user}:{MASK}@" if colon else f"{m.group(1)}{MASK}@"


def _quoted_header(m: re.Match[str]) -> str:
    q, name = m.group(1), m.group(2)
    return f"{q}{name}: {MASK}{q}" if is_secret_name(name) else m.group(0)


def _named_values(s: str) -> str:
    """NAME=value, NAME: value and "NAME": "value" with a credential-looking NAME."""
    pos, parts = 0, []
    while (m := _NAME.search(s, pos)) is not None:
        start = m.end()
        if not is_secret_name(m.group("name")) or start >= len(s):
            parts.append(s[pos:start])
            pos = start
            continue
        end = _value_end(s, start, header=":" in m.group("sep") and not m.group("q"))
        parts.append(s[pos:start])
        if _SCHEME_MASKED.fullmatch(s[start:end]):
            parts.append(s[start:end])  # "Bearer ***" already: keep the scheme, it helps
        elif end > start:
            quote = s[start] if s[start] in "\"'" else ""
            parts.append(f"{quote}{MASK}{quote if end - start > 1 and s[end - 1] == quote else ''}")
        pos = max(end, start)
    parts.append(s[pos:])
    return "".join(parts)


def _value_end(s: str, start: int, header: bool) -> int:
    if s[start] in "\"'":
        close = s.find(s[start], start + 1)
        return len(s) if close < 0 else close + 1
    # "Authorization: Bearer x" runs to the end of the line; NAME=value to a space or separator.
    m = (_HEADER_END if header else _VALUE_END).search(s, start)
    return len(s) if m is None else m.start()


def _flag_values(s: str) -> str:
    """``--api-key sk-abc`` inside one string (``sh -c "..."``)."""
    pos, parts = 0, []
    while (m := _FLAG_THEN_VALUE.search(s, pos)) is not None:
        parts.append(s[pos : m.end()])
        pos = m.end()
        if is_secret_name(m.group(1)):
            quote = s[pos] if s[pos] in "\"'" else ""
            parts.append(f"{quote}{MASK}{quote}")
            pos = _value_end(s, pos, header=False)
    parts.append(s[pos:])
    return "".join(parts)
