"""The remote half: flags for Prometheus, Alertmanager and direct scrapes, and the sources they
build. Credentials come from files or environment variables, never from a flag's value, so they
stay out of shell history and ``ps``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vramtop import durations
from vramtop.config import ConfigError, Settings, check_flag, default_config_path
from vramtop.credentials import problem

if TYPE_CHECKING:
    from vramtop.collector import Source
    from vramtop.profiles import Profile
    from vramtop.sources.http import Endpoint


def add_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Prometheus, Alertmanager and /metrics")
    g.add_argument(
        "--prometheus",
        metavar="URL",
        help="Prometheus (or Thanos, Mimir, VictoriaMetrics) base URL; also VRAMTOP_PROMETHEUS_URL",
    )
    g.add_argument("--alertmanager", metavar="URL", help="Alertmanager base URL, for silences")
    g.add_argument(
        "--scrape",
        metavar="URL",
        action="append",
        help="an inference server's /metrics URL to read directly, without Prometheus (repeatable)",
    )
    g.add_argument("--instance", metavar="REGEX", help="only hosts whose instance label matches")
    g.add_argument(
        "--profile", metavar="LIST", help="auto (default) or profile names, e.g. vllm,dcgm"
    )
    g.add_argument("--rate-window", metavar="DURATION", help="PromQL rate window (default 2m)")
    g.add_argument(
        "--bearer-token-file",
        metavar="FILE",
        help="file holding a bearer token (or set VRAMTOP_BEARER_TOKEN)",
    )
    g.add_argument(
        "--basic-auth-user",
        metavar="USER",
        help="basic-auth user; the password "
        "comes from VRAMTOP_BASIC_AUTH_PASSWORD or --basic-auth-password-file",
    )
    g.add_argument("--basic-auth-password-file", metavar="FILE", help="file holding the password")
    g.add_argument(
        "--header",
        metavar="'NAME: VALUE'",
        action="append",
        help="extra HTTP header, e.g. 'X-Scope-OrgID: team-a' (repeatable)",
    )
    g.add_argument("--ca-file", metavar="FILE", help="CA bundle to verify TLS with")
    g.add_argument(
        "--insecure", action="store_true", default=None, help="do not verify TLS certificates"
    )


def flags_from(args: argparse.Namespace) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    pairs = [
        ("prometheus_url", "--prometheus", args.prometheus),
        ("alertmanager_url", "--alertmanager", args.alertmanager),
        ("scrape", "--scrape", args.scrape),
        ("instance", "--instance", args.instance),
        ("profile", "--profile", args.profile),
        ("rate_window", "--rate-window", args.rate_window),
        ("bearer_token_file", "--bearer-token-file", args.bearer_token_file),
        ("basic_auth_user", "--basic-auth-user", args.basic_auth_user),
        ("headers", "--header", args.header),
        ("ca_file", "--ca-file", args.ca_file),
    ]
    for key, flag, value in pairs:
        if value is not None:
            flags[key] = check_flag(key, flag, value)
    if args.insecure:
        flags["tls_verify"] = False
    return flags


def credentials(settings: Settings, env: Mapping[str, str], password_file: str | None) -> Any:
    """(bearer token, (user, password)) checked before any request: a value that an HTTP header
    cannot carry is one sentence naming where it came from, never the value; an empty token is
    a warning and requests then go without one. Accepted secrets are remembered for masking."""
    from vramtop import redact

    # Surrounding whitespace (a file's trailing newline) is not part of a secret.
    token = None
    if settings.bearer_token_file:
        path = settings.bearer_token_file
        token = _file_text(path, "bearer token file").strip()
    elif "VRAMTOP_BEARER_TOKEN" in env:
        token = env["VRAMTOP_BEARER_TOKEN"].strip()
    if token is not None:
        if problem_ := problem(token, ascii_only=True, spaces=False):
            raise ConfigError(_refusal(_where_token(settings), problem_, "printable ASCII"))
        if not token:
            _warn(f"{_where_token(settings)} is empty; requests go without a bearer token")
            token = None
    basic = None
    if settings.basic_auth_user:
        user = settings.basic_auth_user
        if ":" in user or problem(user, ascii_only=False, spaces=True):
            raise ConfigError(
                "the basic-auth user must be one line of text without ':' or control characters"
            )
        if password_file:
            where = f"{password_file}: the basic-auth password"
            password = _file_text(password_file, "basic-auth password file").strip()
        else:
            where = "VRAMTOP_BASIC_AUTH_PASSWORD"
            password = env.get("VRAMTOP_BASIC_AUTH_PASSWORD", "").strip()
        if problem_ := problem(password, ascii_only=False, spaces=True):
            raise ConfigError(_refusal(where, problem_, "UTF-8 text"))
        if not password:
            _warn(f"{where} is empty (or unset); requests go with an empty password")
        basic = (user, password)
    redact.remember(token)
    redact.remember(basic[1] if basic else None)
    return token, basic


def _where_token(settings: Settings) -> str:
    if settings.bearer_token_file:
        return f"{settings.bearer_token_file}: the bearer token"
    return "VRAMTOP_BEARER_TOKEN"


def _refusal(where: str, why: str, allowed: str) -> str:
    return f"{where} holds {why} (not shown here); it must be {allowed} on one line"


def _file_text(path: str, what: str) -> str:
    from vramtop.credentials import read_secret

    data = read_secret(path, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"the {what} {path} is not UTF-8 text") from None


def _warn(message: str) -> None:
    print(f"vramtop: warning: {message}", file=sys.stderr)


def endpoint(
    url: str,
    settings: Settings,
    env: Mapping[str, str],
    password_file: str | None,
    creds: Any = None,
) -> Endpoint:
    from vramtop.sources.http import Endpoint

    token, basic = creds or credentials(settings, env, password_file)
    if settings.ca_file and not os.path.isfile(settings.ca_file):
        raise ConfigError(f"the CA file {settings.ca_file} does not exist")
    return Endpoint(
        url=url,
        bearer_token=token,
        basic_auth=basic,
        headers=dict(settings.headers),
        ca_file=settings.ca_file,
        verify_tls=settings.tls_verify,
        timeout=settings.timeout,
        max_bytes=settings.max_response_bytes,
    )


def profiles(settings: Settings, env: Mapping[str, str]) -> tuple[list[Profile], bool]:
    """The profiles to use and whether they were forced (not auto-detected)."""
    from vramtop.profiles import ProfileError, load_all

    user_dir = default_config_path(env).parent / "profiles"
    try:
        available = load_all([Path(user_dir)])
    except ProfileError as err:
        raise ConfigError(str(err)) from None
    if settings.profile == "auto":
        return list(available.values()), False
    names = [n for n in settings.profile.split(",") if n]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ConfigError(
            f"unknown profile {unknown[0]!r} (available: auto, {', '.join(sorted(available))})"
        )
    return [available[n] for n in names], True


def sources(settings: Settings, env: Mapping[str, str], password_file: str | None) -> list[Source]:
    if not (settings.prometheus_url or settings.alertmanager_url or settings.scrape):
        return []
    chosen, forced = profiles(settings, env)
    creds = credentials(settings, env, password_file)
    out: list[Any] = []
    prom = am = None
    if settings.prometheus_url:
        from vramtop.sources.promql import PromSource

        prom = endpoint(settings.prometheus_url, settings, env, password_file, creds)
        out.append(
            PromSource(
                prom,
                chosen,
                forced,
                settings.instance,
                settings.rate_window,
                max_series=settings.max_series,
            )
        )
    if settings.alertmanager_url:
        am = endpoint(settings.alertmanager_url, settings, env, password_file, creds)
    if prom or am:
        from vramtop.sources.alerts import AlertSource

        out.append(AlertSource(prom, am, settings.instance))
    if settings.scrape:
        from vramtop.sources.scrape import ScrapeSource

        eps = [endpoint(u, settings, env, password_file, creds) for u in settings.scrape]
        window = durations.parse(settings.rate_window, durations.WINDOW)
        out.append(ScrapeSource(eps, chosen, forced, window=window, max_series=settings.max_series))
    return out
