"""From Settings (plus the environment and a password file) to a Collector: the local sources,
the demo host, and the endpoints, profiles and sources for Prometheus, Alertmanager and direct
scrapes. Credentials come from files or environment variables, never from a flag's value, so
they stay out of shell history and ``ps``."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from vramtop import durations
from vramtop.config import ConfigError, Settings, Targets, default_config_path
from vramtop.credentials import problem

if TYPE_CHECKING:
    from vramtop.attribution import Attributor
    from vramtop.collector import Collector, Source
    from vramtop.local_rules import LocalRules
    from vramtop.profiles import Profile
    from vramtop.sources.http import Endpoint
    from vramtop.sources.nvml import GpuSelection


def build_collector(
    settings: Settings,
    env: Mapping[str, str],
    demo: bool | str | None = False,
    password_file: str | None = None,
    clock: Callable[[], float] = time.time,
) -> Collector:
    """The one place that wires sources together: for --once, the live view, --headless, the
    bench and the tests. ``demo``: True or "host" for the demo host, "fleet" for the demo fleet;
    ``clock`` moves it, and stamps the Frames of the real sources (which read the real time)."""
    from vramtop.attribution import Attributor
    from vramtop.collector import Collector
    from vramtop.local_rules import LocalRules
    from vramtop.sources.host import HostSource
    from vramtop.sources.nvml import NvmlSource

    selection = None
    if settings.gpus is not None:
        selection = _selection(settings.gpus, "the GPU list (--gpus / VRAMTOP_GPUS / gpus)")
    elif "CUDA_VISIBLE_DEVICES" in env:
        selection = _selection(env["CUDA_VISIBLE_DEVICES"], "CUDA_VISIBLE_DEVICES")
    if demo:
        attributor = Attributor(settings.attribution)
        targets = demo_targets(settings.targets)
        rules = LocalRules(settings.rules, targets) if settings.rules else None
        return _demo(selection, attributor, settings.timeout, clock, demo == "fleet", rules)
    return Collector(
        host=HostSource(),
        nvml=NvmlSource(selection=selection),
        attributor=Attributor(settings.attribution),
        timeout=settings.timeout,
        remote=remote_sources(settings, env, password_file),
        rules=LocalRules(settings.rules, settings.targets) if settings.rules else None,
        clock=clock,
        remote_every=max(settings.remote_interval, settings.interval),
    )


DEMO_LLM_P95_SECONDS = 3.0
# The demo's LLMs (vLLM, SGLang, llama.cpp) by name; its vision and embedding models keep 100 ms.
_DEMO_LLMS = ("llama-*", "Qwen/*", "Mistral-*")


def demo_targets(targets: Targets) -> Targets:
    """The demo's LLMs answer whole requests in 0.5-1.4 s at p95 on a quiet day: held to the
    seed's 100 ms (the Models and Hosts colours) and 1 s (the local SlowAPIResponse) they would
    be red and firing for good. Their SLO is 3 s, where the user configured none."""
    if targets.latency_p95_warning_seconds == Targets.latency_p95_warning_seconds:
        targets = replace(targets, latency_p95_warning_seconds=DEMO_LLM_P95_SECONDS)
    if not targets.model_p95_seconds:
        llms = tuple((glob, DEMO_LLM_P95_SECONDS) for glob in _DEMO_LLMS)
        targets = replace(targets, model_p95_seconds=llms)
    return targets


def _selection(text: str, where: str) -> GpuSelection:
    from vramtop.sources.nvml import GpuSelection

    try:
        return GpuSelection.parse(text)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None


def _demo(
    selection: GpuSelection | None,
    attributor: Attributor,
    timeout: float,
    clock: Callable[[], float],
    fleet: bool = False,
    rules: LocalRules | None = None,
) -> Collector:
    """The demo host: the real collector and sources over simulated GPUs, host and servers. With
    ``fleet``, also six simulated hosts whose vramtop exporters and servers the same scrape
    source reads, each target named by its host (they all listen on 127.0.0.1)."""
    from vramtop.collector import Collector
    from vramtop.demo.host import (
        HOSTNAME,
        DemoHostSource,
        DemoInspector,
        DemoNvmlSource,
        DemoScrapeSource,
    )
    from vramtop.demo.serving import DemoAlertSource, DemoServing
    from vramtop.profiles import load_all
    from vramtop.sources.http import Endpoint

    host, nvml = DemoHostSource(clock), DemoNvmlSource(selection, clock)
    serving = DemoServing(clock)  # its simulated servers start on the first urls()
    targets = [(HOSTNAME, url) for url in serving.urls()]
    demo_fleet = None
    if fleet:
        from vramtop.demo.fleet_servers import DemoFleet

        demo_fleet = DemoFleet(clock)
        targets += demo_fleet.targets()  # its servers start here
    servers = [Endpoint(url, timeout=2.0) for _, url in targets]
    return Collector(
        host=host,
        nvml=nvml,
        inspector=DemoInspector(clock),
        attributor=attributor,
        timeout=timeout,
        demo=True,
        clock=clock,
        remote=[
            DemoScrapeSource(
                serving, servers, list(load_all().values()), [h for h, _ in targets], demo_fleet
            ),
            DemoAlertSource(clock, fleet=fleet),
        ],
        rules=rules,
    )


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
    from pathlib import Path

    from vramtop.profiles import ProfileError, load_all

    user_dir = os.path.join(os.path.dirname(default_config_path(env)), "profiles")
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


def remote_sources(
    settings: Settings, env: Mapping[str, str], password_file: str | None
) -> list[Source]:
    """Prometheus, alerts and direct scrapes, as the settings name them (none: an empty list)."""
    targets = scrape_targets(settings)
    if not (settings.prometheus_url or settings.alertmanager_url or targets):
        return []
    import socket  # for the remote sources only: a local start does without it

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
                match=settings.match,
                host_label=settings.host_label,
                this_host=prometheus_here(settings.prometheus_url, socket.gethostname()),
            )
        )
    if settings.alertmanager_url:
        am = endpoint(settings.alertmanager_url, settings, env, password_file, creds)
    if prom or am:
        from vramtop.sources.alerts import AlertSource

        out.append(AlertSource(prom, am, settings.instance, settings.match))
    if am:
        from vramtop.sources.silences import SilenceSource

        out.append(SilenceSource(am))
    if targets:
        from vramtop.sources.scrape import ScrapeSource

        eps = [endpoint(u, settings, env, password_file, creds) for u in targets]
        window = durations.parse(settings.rate_window, durations.WINDOW)
        out.append(
            ScrapeSource(
                eps,
                chosen,
                forced,
                window=window,
                max_series=settings.max_series,
                hosts=scrape_hosts(targets, socket.gethostname()),
            )
        )
    return out


def prometheus_here(url: str, hostname: str) -> str | None:
    """This machine's name when Prometheus runs on it: then the targets it scrapes on loopback
    are this machine too (a Prometheus elsewhere means its own box by 127.0.0.1)."""
    from vramtop.fleet import host_key, this_machine

    return hostname if this_machine(host_key(url), hostname) else None


def scrape_hosts(urls: Sequence[str], hostname: str) -> list[str]:
    """Each target's host key; one on this machine (loopback) is this machine's hostname."""
    from vramtop.fleet import host_key, this_machine

    keys = [host_key(u) or u for u in urls]
    return [hostname if this_machine(k, hostname) else k for k in keys]


def scrape_targets(settings: Settings) -> tuple[str, ...]:
    """``--scrape`` URLs, then the hosts file's, each once; a bad file is one sentence."""
    if not (settings.scrape or settings.hosts_file):
        return ()  # the local view: no URL parsing to import
    from vramtop.sources.targets import TargetError, combined, parse_hosts

    if not settings.hosts_file:
        return combined(settings.scrape)
    from vramtop.credentials import read_regular

    path = settings.hosts_file
    data = read_regular(path, "hosts file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        where = f"bad byte at offset {err.start}"
        raise ConfigError(f"{path}: hosts file is not UTF-8 text ({where})") from None
    try:
        return combined(settings.scrape, parse_hosts(text, path))
    except TargetError as err:
        raise ConfigError(str(err)) from None
