"""Typed settings: defaults < TOML file < ``VRAMTOP_*`` environment < flags.

Every rejection is one sentence naming where the bad value came from (file and key, or the
variable), what was expected and what was found; the CLI prints it and exits 2.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import field, fields, replace
from typing import Any

from vramtop import durations
from vramtop.attribution import Rule
from vramtop.choices import FORMATS
from vramtop.local_rules import DEFAULT_RULES, LocalRule
from vramtop.records import record

MIN_INTERVAL = 0.1
MAX_DURATION = 7 * 86400.0


class ConfigError(Exception):
    """Bad configuration; the message is the whole sentence shown to the user."""


class Refused(ValueError):
    """A value refused for a reason that replaces "must be X, got Y": it would show a secret."""


@record(slots=False)
class Targets:
    """Where a value turns warning or critical; defaults are the monitoring overview's KPIs."""

    api_p95_seconds: float = 0.2  # API response p95 < 200 ms
    inference_p95_seconds: float = 0.1  # inference < 100 ms
    error_ratio: float = 0.001  # error rate < 0.1 %
    queue_wait_seconds: float = 5.0  # queue wait < 5 s
    queue_length_warning: float = 50.0  # ModelQueueBacklog
    vram_critical_ratio: float = 0.95  # VRAMExhausted
    cpu_warning_ratio: float = 0.8  # HighCPUUsage
    # LLM serving: drawn and coloured only where configured (None: no target)
    ttft_p95_seconds: float | None = None  # time to first token, p95
    kv_cache_warning_ratio: float | None = None  # KV cache in use, 0..1
    error_ratio_critical: float = 0.01  # HighErrorRate: 5xx above 1 % of requests
    latency_p95_warning_seconds: float = 1.0  # SlowAPIResponse
    # [targets.model_p95_seconds]: (glob on the model name, p95 seconds), the first match wins
    # over inference_p95_seconds; an LLM answering whole requests is not held to 100 ms.
    model_p95_seconds: tuple[tuple[str, float], ...] = ()

    def p95_for(self, model: str) -> float:
        """The p95 target ``model`` is held against."""
        from fnmatch import fnmatchcase

        for pattern, seconds in self.model_p95_seconds:
            if fnmatchcase(model, pattern):
                return seconds
        return self.inference_p95_seconds


@record(slots=False)
class Settings:
    """Every setting: defaults < TOML file < VRAMTOP_* environment < flags."""

    interval: float = 2.0  # seconds between refreshes
    timeout: float = 5.0  # seconds a source may take before it is reported stale
    format: str = "text"  # text, markdown or json for one-shot output
    gpus: str | None = None  # "0,2" or UUIDs; None means CUDA_VISIBLE_DEVICES or all
    no_color: bool = False
    attribution: tuple[Rule, ...] = field(default=())
    targets: Targets = field(default_factory=Targets)
    # Remote sources
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    scrape: tuple[str, ...] = ()
    instance: str | None = None  # regex on the instance label
    # Fleet: label matchers (label, op, value) with op one of = != =~ !~, ANDed into every query
    match: tuple[tuple[str, str, str], ...] = ()
    hosts_file: str | None = None  # more --scrape targets, one a line
    host_label: str | None = None  # the label naming a host; None: the instance without its port
    profile: str = "auto"  # auto, or a comma-separated list of profile names
    rate_window: str = "2m"
    # Seconds between reads of Prometheus and Alertmanager in the live view (never more often
    # than ``interval``): their figures change once per scrape or rule evaluation, and rates
    # are averages over ``rate_window``; "r" reads them at once.
    remote_interval: float = 5.0
    bearer_token_file: str | None = None
    basic_auth_user: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    ca_file: str | None = None
    tls_verify: bool = True
    # Bounds on what one server may send: a runaway /metrics or a hostile server is cut off
    # with a sentence naming the cap instead of eating memory and time.
    max_response_bytes: int = 64 * 2**20
    max_series: int = 200_000
    # Live view
    theme: str | None = None  # None: vramtop-dark, or vramtop-mono without colour
    theme_source: str = "--theme"  # where ``theme`` came from, to blame the right layer
    snapshot_dir: str | None = None  # where the snapshot key writes; None: the current directory
    columns: tuple[str, ...] | None = None  # the Models table's; None: as the models have
    readonly: bool = False  # no actions (signals, silences): keys, palette and help lose them
    # The exporter: (address, port) to serve /metrics on, and whether per-pid series are sent
    serve_metrics: tuple[str, int] | None = None
    serve_metrics_processes: bool = False
    config_file: str | None = None  # where the file layer came from, for messages
    # Alerts without Prometheus (vramtop.local_rules) and links out (vramtop.links)
    rules: tuple[LocalRule, ...] = DEFAULT_RULES
    links: tuple[tuple[str, str], ...] = ()  # (name, URL template)
    # Actions: read-only removes them all; a silence's createdBy (None: the login name)
    silence_author: str | None = None


def parse_duration(text: str | float | int) -> float:
    """``2``, ``2s``, ``1.5``, ``500ms`` or ``1m`` as seconds, up to MAX_DURATION; ValueError
    otherwise (hours are refused: an interval of ``2h`` is a typo)."""
    value = durations.parse(text, durations.INTERVAL)
    if value <= 0 or value > MAX_DURATION:
        raise ValueError(text)
    return value


def _interval(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds < MIN_INTERVAL:
        raise ValueError(value)
    return seconds


def _format(value: Any) -> str:
    if value not in FORMATS:
        raise ValueError(value)
    return str(value)


def _gpus(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(v, int | str) for v in value):
        return ",".join(str(v) for v in value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        return value
    raise ValueError(value)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in (
        "1",
        "true",
        "yes",
        "on",
        "0",
        "false",
        "no",
        "off",
    ):
        return value.lower() in ("1", "true", "yes", "on")
    raise ValueError(value)


def _rules(value: Any) -> tuple[Rule, ...]:
    if not isinstance(value, list):
        raise ValueError(value)
    rules = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) - {"pattern", "model", "match"}:
            raise ValueError(entry)
        pattern, model = entry.get("pattern"), entry.get("model")
        match = entry.get("match", "cmdline")
        if not isinstance(pattern, str) or not isinstance(model, str) or not model:
            raise ValueError(entry)
        if match not in ("cmdline", "container", "user"):
            raise ValueError(entry)
        try:
            compiled = re.compile(pattern)
        except RecursionError:  # thousands of nested groups
            raise ValueError(f"{pattern[:60]!r}… (too deeply nested)") from None
        except re.error as err:
            raise ValueError(f"{pattern!r} ({err})") from None
        rules.append(Rule(compiled, model, match))
    return tuple(rules)


def _targets(value: Any) -> Targets:
    if not isinstance(value, dict):
        raise ValueError(value)
    known = {f.name for f in fields(Targets)}
    numbers: dict[str, Any] = {}
    for key, number in value.items():
        if key not in known:
            raise ValueError(f"unknown target {key!r}")
        if key == "model_p95_seconds":
            numbers[key] = _model_targets(number)
        else:
            numbers[key] = _non_negative(number)
    return Targets(**numbers)


def _model_targets(value: Any) -> tuple[tuple[str, float], ...]:
    if not isinstance(value, dict):
        raise ValueError(value)
    return tuple((str(k), _non_negative(v)) for k, v in value.items())


def _non_negative(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(value)
    return float(value)


def _url(value: Any) -> str:
    from urllib.parse import unquote, urlsplit

    from vramtop import redact

    if not isinstance(value, str):
        raise ValueError(value)
    if _BAD_URL_CHAR.search(value.strip()):
        raise Refused(
            f"must be an http:// or https:// URL, got {shown('scrape', value)} "
            "(it holds a space, line break or other control character)"
        )
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        if "@" in value:
            raise Refused(
                f"must be an http:// or https:// URL, got {shown('scrape', value)} (a password "
                "holding '/', '#', '?' or '@' must be percent-encoded, e.g. '/' as %2F)"
            ) from None
        raise ValueError(value) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(value)
    if parts.password:
        redact.remember(parts.password)
        redact.remember(unquote(parts.password))
    return value.strip()


# Whitespace and control characters (C0, DEL, C1); Python's urlsplit would silently drop some.
_BAD_URL_CHAR = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def _urls(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value:
        raise ValueError(value)
    return tuple(_url(v) for v in value)


def _regex(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(value)
    try:
        re.compile(value)
    except (re.error, RecursionError):  # RecursionError: thousands of nested groups
        raise ValueError(value) from None
    return value


LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MATCHER = re.compile(r"\s*([^=!~\s]*)\s*(=~|!~|!=|=)(.*)", re.S)
_MATCH_FORMS = "LABEL=VALUE, LABEL!=VALUE, LABEL=~REGEX or LABEL!~REGEX"


def _matchers(value: Any) -> tuple[tuple[str, str, str], ...]:
    """``cluster=~eu-.*`` and friends, as PromQL label matchers (label, op, value). A string
    holds several separated by ``;`` (VRAMTOP_MATCH)."""
    if isinstance(value, str):
        value = [v for v in value.split(";") if v.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(value)
    return tuple(matcher(v) for v in value)


def matcher(text: str) -> tuple[str, str, str]:
    """One ``LABEL op VALUE``; Refused with the sentence saying what is wrong with it."""
    shown_ = shown("match", text)
    m = _MATCHER.fullmatch(text)
    if not m:
        raise Refused(f"{shown_}: not a label matcher (expected {_MATCH_FORMS})")
    label, op, val = m.group(1), m.group(2), m.group(3).strip()
    if not LABEL_NAME.fullmatch(label):
        raise Refused(
            f"{shown_}: bad label name {shown('match', label)} (letters, digits and _, "
            "not starting with a digit)"
        )
    if label == "__name__":
        raise Refused(f"{shown_}: __name__ cannot be matched (vramtop picks the metrics)")
    if len(val) >= 2 and val[0] == val[-1] == '"':
        val = val[1:-1]  # PromQL habit: cluster="eu"
    if op in ("=~", "!~"):
        why = regex_problem(val)
        if why:
            raise Refused(f"{shown_}: bad regular expression: {why}")
    return (label, op, val)


def regex_problem(pattern: str) -> str | None:
    """Why Prometheus (Go's RE2) would refuse ``pattern``, or None. Python's parser finds the
    syntax errors; what Python accepts and RE2 does not is looked for by hand."""
    try:
        re.compile(pattern)
    except re.error as err:
        return err.msg
    except RecursionError:
        return "too deeply nested"
    return _re2_only(pattern)


_RE2 = "not supported by Prometheus (RE2)"
_NOT_RE2 = {
    "(?=": f"lookahead is {_RE2}",
    "(?!": f"negative lookahead is {_RE2}",
    "(?<=": f"lookbehind is {_RE2}",
    "(?<!": f"negative lookbehind is {_RE2}",
    "(?>": f"atomic groups are {_RE2}",
    "(?(": f"conditional groups are {_RE2}",
    "(?P=": f"backreferences are {_RE2}",
}


def _re2_only(pattern: str) -> str | None:
    """A scan of a pattern Python compiled: escapes and character classes are skipped."""
    i, in_class = 0, False
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            nxt = pattern[i + 1 : i + 2]
            if not in_class and nxt in tuple("123456789"):
                return f"backreferences are {_RE2}"
            if nxt == "Z":
                return f"\\Z is {_RE2}; use $"
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            i += 1
            if pattern[i : i + 1] == "^":
                i += 1
            if pattern[i : i + 1] == "]":  # a leading ] is a literal
                i += 1
            continue
        elif ch == "(":
            why = next((w for start, w in _NOT_RE2.items() if pattern.startswith(start, i)), None)
            if why:
                return why
        elif ch in "*+?}" and pattern[i + 1 : i + 2] == "+":
            return f"possessive quantifiers are {_RE2}"
        i += 1
    return None


def _columns(value: Any) -> tuple[str, ...]:
    from vramtop.serving import MODEL_COLUMNS

    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ValueError(value)
    unknown = [v for v in value if v not in MODEL_COLUMNS]
    if unknown:
        raise Refused(
            f"names no Models table column {shown('columns', unknown[0])} "
            f"(columns: {', '.join(MODEL_COLUMNS)})"
        )
    return tuple(dict.fromkeys(value))


def _label(value: Any) -> str:
    if not isinstance(value, str) or not LABEL_NAME.fullmatch(value.strip()):
        raise ValueError(value)
    return value.strip()


def _profile(value: Any) -> str:
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_,.-]+", value.replace(" ", "")):
        raise ValueError(value)
    return value.replace(" ", "")


def _window(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[1-9][0-9]*(s|m|h)", value):
        raise ValueError(value)
    return value


def _count(value: Any) -> int:
    """A positive whole number; a string may carry a KiB/MiB/GiB or k/M suffix."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]+)\s*(KiB|MiB|GiB|k|M)?\s*", value)
        if not m:
            raise ValueError(value)
        scale = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "k": 10**3, "M": 10**6, None: 1}
        value = int(m.group(1)) * scale[m.group(2)]
    if not isinstance(value, int) or value <= 0:
        raise ValueError(value)
    return value


def _listen(value: Any) -> tuple[str, int]:
    """``PORT``, ``ADDR:PORT``, ``:PORT`` or ``[V6]:PORT``; no address: every interface."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str) or not (m := re.fullmatch(LISTEN, text.strip())):
        raise ValueError(value)
    port = int(m.group(3) or m.group(4))
    if port > 65535:
        raise ValueError(value)
    return (m.group(1) or m.group(2) or "0.0.0.0", port)


LISTEN = r"(?:\[([0-9A-Fa-f:.]+)\]|([^\s:\[\]]*)):([0-9]{1,5})|([0-9]{1,5})"


def _plain(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(value)
    return value.strip()


def _path(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(value)
    return os.path.expanduser(value)


def _local_rules(value: Any) -> tuple[LocalRule, ...]:
    from vramtop.local_rules import RuleError, parse_rules

    try:
        return parse_rules(value, (f.name for f in fields(Targets)))
    except RuleError as why:
        raise Refused(str(why)) from None


def _links(value: Any) -> tuple[tuple[str, str], ...]:
    from vramtop.links import LinkError, parse_links

    try:
        return parse_links(value)
    except LinkError as why:
        raise Refused(str(why)) from None


def _headers(value: Any) -> tuple[tuple[str, str], ...]:
    from vramtop.credentials import headers

    return headers(value)


# Values never echoed back in a message: they may carry a password or token.
SECRET_KEYS = {"prometheus_url", "alertmanager_url", "scrape", "headers"}


def shown(key: str, raw: Any) -> str:
    """A bad value as it may be echoed: URLs without credentials, headers not at all, anything
    else masked like a message and cut to ~200 characters."""
    from vramtop import redact

    if key == "headers":
        return "(value hidden: it may hold a secret)"
    if key in SECRET_KEYS and isinstance(raw, str):
        return repr(redact.cut(redact.url(raw)))
    if key in SECRET_KEYS and isinstance(raw, list):
        raw = [redact.url(v) if isinstance(v, str) else v for v in raw]
    elif key in SECRET_KEYS:
        return "(value hidden: it may hold a secret)"
    return redact.cut(redact.text(repr(raw)))


# key -> (parser, what is expected, environment variable or None)
_KEYS: dict[str, tuple[Callable[[Any], Any], str, str | None]] = {
    "interval": (
        _interval,
        f'a duration of at least {MIN_INTERVAL} s, like 2 or "2s"',
        "VRAMTOP_INTERVAL",
    ),
    "timeout": (parse_duration, 'a positive duration, like 5 or "5s"', "VRAMTOP_TIMEOUT"),
    "format": (_format, "one of " + ", ".join(FORMATS), "VRAMTOP_FORMAT"),
    "gpus": (_gpus, 'a GPU list like "0,2" or ["GPU-8a7f..."]', "VRAMTOP_GPUS"),
    "no_color": (_bool, "true or false", "VRAMTOP_NO_COLOR"),
    "attribution": (
        _rules,
        'a list of tables with "pattern" (a regex), "model" and optional "match" '
        "(cmdline, container or user)",
        None,
    ),
    "prometheus_url": (_url, "an http:// or https:// URL", "VRAMTOP_PROMETHEUS_URL"),
    "alertmanager_url": (_url, "an http:// or https:// URL", "VRAMTOP_ALERTMANAGER_URL"),
    "scrape": (_urls, "a list of http:// or https:// /metrics URLs", "VRAMTOP_SCRAPE"),
    "instance": (_regex, "a regular expression for the instance label", "VRAMTOP_INSTANCE"),
    "match": (
        _matchers,
        f'label matchers ({_MATCH_FORMS}), like ["cluster=~eu-.*"]',
        "VRAMTOP_MATCH",
    ),
    "host_label": (_label, 'a label name, like "node"', "VRAMTOP_HOST_LABEL"),
    "hosts_file": (_path, "a file path", "VRAMTOP_HOSTS_FILE"),
    "profile": (_profile, 'auto or profile names like "vllm,dcgm"', "VRAMTOP_PROFILE"),
    "rate_window": (_window, 'a PromQL duration like "2m"', "VRAMTOP_RATE_WINDOW"),
    "remote_interval": (
        _interval,
        f'a duration of at least {MIN_INTERVAL} s, like 5 or "5s"',
        "VRAMTOP_REMOTE_INTERVAL",
    ),
    "bearer_token_file": (_path, "a file path", "VRAMTOP_BEARER_TOKEN_FILE"),
    "basic_auth_user": (str, "a user name", "VRAMTOP_BASIC_AUTH_USER"),
    "headers": (_headers, 'a table of header names to values, like { X-Scope-OrgID = "t" }', None),
    "ca_file": (_path, "a file path", "VRAMTOP_CA_FILE"),
    "tls_verify": (_bool, "true or false", "VRAMTOP_TLS_VERIFY"),
    "max_response_bytes": (
        _count,
        'a positive size in bytes, like 67108864 or "64MiB"',
        "VRAMTOP_MAX_RESPONSE_BYTES",
    ),
    "max_series": (
        _count,
        'a positive number of series, like 200000 or "200k"',
        "VRAMTOP_MAX_SERIES",
    ),
    "serve_metrics": (
        _listen,
        "[ADDR:]PORT, like 19400 or 127.0.0.1:19400",
        "VRAMTOP_SERVE_METRICS",
    ),
    "serve_metrics_processes": (_bool, "true or false", "VRAMTOP_SERVE_METRICS_PROCESSES"),
    "theme": (_plain, "a theme name", "VRAMTOP_THEME"),
    "snapshot_dir": (_path, "a directory path", "VRAMTOP_SNAPSHOT_DIR"),
    "columns": (
        _columns,
        'a list of Models table columns, like ["name", "vram", "kv", "p95", "ttft"]',
        "VRAMTOP_COLUMNS",
    ),
    "rules": (_local_rules, "a list of alert rules ([[rules]])", None),
    "links": (_links, "a table of names to http(s) URL templates ([links])", None),
    "readonly": (_bool, "true or false", "VRAMTOP_READONLY"),
    "silence_author": (_plain, "a name for a silence's createdBy", "VRAMTOP_SILENCE_AUTHOR"),
    "targets": (
        _targets,
        "a table of non-negative numbers with keys "
        + ", ".join(f.name for f in fields(Targets))
        + " (model_p95_seconds: a table of model-name globs to seconds)",
        None,
    ),
}


def default_config_path(env: Mapping[str, str]) -> str:
    # Paths as strings: pathlib (and the urllib and ipaddress it imports) cost every start ~5 ms.
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", "~"), ".config")
    return os.path.join(os.path.expanduser(base), "vramtop", "config.toml")


def load(
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge every layer. ``config_file`` (from --config) must exist; the default may not."""
    env = os.environ if env is None else env
    settings = Settings()
    explicit = config_file or env.get("VRAMTOP_CONFIG")
    path = explicit or default_config_path(env)
    if explicit or os.path.isfile(path):
        settings = replace(_from_file(path), config_file=path)
    settings = _apply(settings, _from_env(env))
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    if "theme" in flags:
        flags["theme_source"] = "--theme"
    settings = _apply(settings, flags)
    if env.get("NO_COLOR"):
        settings = replace(settings, no_color=True)
    return settings


def _apply(settings: Settings, values: Mapping[str, Any]) -> Settings:
    known = {f.name for f in fields(Settings)}
    return replace(settings, **{k: v for k, v in values.items() if k in known})


def _from_file(path: str) -> Settings:
    import tomllib  # only where a config file exists: ~10 ms of every start otherwise

    from vramtop.credentials import read_regular

    data_bytes = read_regular(path, "config file")
    try:
        data = tomllib.loads(data_bytes.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: config file is not UTF-8 text (bad byte at offset {err.start})"
        ) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    values = {}
    for key, raw in data.items():
        if key not in _KEYS:
            raise ConfigError(
                f"{path}: unknown key {key!r} (known keys: {', '.join(sorted(_KEYS))})"
            )
        parse, expected, _ = _KEYS[key]
        try:
            values[key] = parse(raw)
        except Refused as why:
            raise ConfigError(f"{path}: key {key!r} {why}") from None
        except (ValueError, TypeError):
            raise ConfigError(
                f"{path}: key {key!r} must be {expected}, got {shown(key, raw)}"
            ) from None
    if "theme" in values:
        values["theme_source"] = f"{path}: key 'theme'"
    return _apply(Settings(), values)


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values = {}
    for key, (parse, expected, var) in _KEYS.items():
        if var is None or var not in env:
            continue
        try:
            values[key] = parse(env[var])
        except Refused as why:
            raise ConfigError(f"{var} {why}") from None
        except (ValueError, TypeError):
            raise ConfigError(f"{var} must be {expected}, got {shown(key, env[var])}") from None
    if "theme" in values:
        values["theme_source"] = "VRAMTOP_THEME"
    return values


def check_flag(key: str, flag: str, raw: Any) -> Any:
    """Parse one command-line value with the same rules as the file and environment."""
    parse, expected, _ = _KEYS[key]
    try:
        return parse(raw)
    except Refused as why:
        raise ConfigError(f"{flag} {why}") from None
    except (ValueError, TypeError):
        raise ConfigError(f"{flag} must be {expected}, got {shown(key, raw)}") from None
