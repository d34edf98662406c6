"""Every command-line flag (general, remote, recording) and how they become Settings.

The parser needs nothing but argparse: ``--help`` and ``--version`` never import the settings
(config.py and what it pulls in); settings_from does, once a mode runs."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from vramtop import __version__
from vramtop.choices import DEFAULT_SERVE_PORT, FORMATS
from vramtop.entry import write_stdout

if TYPE_CHECKING:
    from vramtop.config import Settings

EXIT_USAGE = 2
AT_HELP = "2026-11-28T03:12:00Z (UTC unless it names a zone), -5m (before the end) or +90s"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One sentence and exit 2, like every other bad input (argparse's default prints usage).
        self.exit(EXIT_USAGE, f"vramtop: {message} (see vramtop --help)\n")

    def _print_message(self, message: str, file: Any = None) -> None:
        # --help and --version: a stdout that cannot take them is one sentence and exit 2.
        if message and (file is None or file is sys.stdout):
            if write_stdout(message):
                raise SystemExit(EXIT_USAGE)
        elif message:
            super()._print_message(message, file)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # `--at -5m`: argparse would read a value that starts with "-" as a flag.
        argv = sys.argv[1:] if args is None else args
        return super().parse_known_args(glue_at_value(argv), namespace)


class _Formatter(argparse.HelpFormatter):
    """argparse's, with the terminal's width read as shutil.get_terminal_size reads it, without
    importing shutil (which imports zlib, bz2 and lzma: ~2.5 ms of every start; argparse makes
    a formatter for each flag it adds)."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = _columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


def _columns() -> int:
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns if columns > 0 else 80


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="vramtop",
        formatter_class=_Formatter,
        description="A live monitor for GPU inference hosts: VRAM per model, latency, "
        "queues and alerts on one screen. `vramtop doctor --help`: checks why a figure "
        "is missing.",
    )
    p.add_argument("-1", "--once", action="store_true", help="print one frame and exit")
    p.add_argument("--format", choices=FORMATS, help="output format for --once (default text)")
    p.add_argument("--json", action="store_true", help="shorthand for --format json")
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write the frame to FILE instead of stdout"
    )
    p.add_argument(
        "--no-color", action="store_true", default=None, help="no colour (also NO_COLOR)"
    )
    p.add_argument(
        "--gpus",
        metavar="LIST",
        help="GPU indices or UUIDs, e.g. 0,2 (default: all, or CUDA_VISIBLE_DEVICES)",
    )
    p.add_argument("--interval", metavar="SECONDS", help="refresh interval, e.g. 2 or 2s")
    p.add_argument("--timeout", metavar="SECONDS", help="how long a source may take (default 5s)")
    p.add_argument(
        "--demo",
        nargs="?",
        const="host",
        choices=("host", "fleet"),
        help="show the embedded simulated demo: its host (default), or fleet: the host and "
        "six simulated GPU hosts read through their vramtop exporters",
    )
    p.add_argument(
        "--theme",
        metavar="NAME",
        help="live view theme: vramtop-dark (default), vramtop-light, vramtop-high-contrast, "
        "vramtop-mono, or a file in $XDG_CONFIG_HOME/vramtop/themes/",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="config file (default $XDG_CONFIG_HOME/vramtop/config.toml)",
    )
    p.add_argument(
        "--readonly",
        action="store_true",
        default=None,
        help="look only: no signals or silences (also VRAMTOP_READONLY, readonly = true)",
    )
    p.add_argument("--version", action="version", version=f"vramtop {__version__}")
    _remote_flags(p)
    _recording_flags(p)
    _serve_flags(p)
    return p


def _serve_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Exporter")
    g.add_argument(
        "--serve-metrics",
        metavar="[ADDR:]PORT",
        nargs="?",
        const=str(DEFAULT_SERVE_PORT),
        help="run headless and serve Prometheus metrics on /metrics "
        f"(default port {DEFAULT_SERVE_PORT}, every interface); also VRAMTOP_SERVE_METRICS",
    )
    g.add_argument(
        "--serve-metrics-processes",
        action="store_true",
        default=None,
        help="also export VRAM per process (one series per pid)",
    )
    g.add_argument("--serve-metrics-cert", metavar="FILE", help="serve HTTPS with this certificate")
    g.add_argument("--serve-metrics-key", metavar="FILE", help="the certificate's private key")
    g.add_argument(
        "--serve-metrics-client-ca",
        metavar="FILE",
        help="with HTTPS: require client certificates signed by this CA",
    )


def _remote_flags(p: argparse.ArgumentParser) -> None:
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
    g.add_argument(
        "--hosts-file",
        metavar="FILE",
        help="more /metrics to read directly: one URL or host:port a line, # comments",
    )
    g.add_argument("--instance", metavar="REGEX", help="only hosts whose instance label matches")
    g.add_argument(
        "--match",
        metavar="'LABEL=~REGEX'",
        action="append",
        help="only series with this label matcher (=, !=, =~, !~), e.g. 'cluster=~eu-.*' "
        "(repeatable; also alerts that carry the label)",
    )
    g.add_argument(
        "--host-label",
        metavar="LABEL",
        help="the label that names a host (default: the instance label without its port)",
    )
    g.add_argument(
        "--profile", metavar="LIST", help="auto (default) or profile names, e.g. vllm,dcgm"
    )
    g.add_argument("--rate-window", metavar="DURATION", help="PromQL rate window (default 2m)")
    g.add_argument(
        "--remote-interval",
        metavar="SECONDS",
        help="live view: read Prometheus and Alertmanager at most this often (default 5s)",
    )
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


def _recording_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("Recording and replay")
    g.add_argument(
        "--record",
        metavar="FILE",
        help="record every frame to FILE (a new session after any already there)",
    )
    g.add_argument(
        "--headless",
        action="store_true",
        help="with --record: record without the live view, until --duration, SIGINT or SIGTERM",
    )
    g.add_argument("--duration", metavar="SPAN", help="with --headless: stop after e.g. 10m or 24h")
    g.add_argument(
        "--replay", metavar="FILE", help="replay a recording (with --once: print one frame of it)"
    )
    g.add_argument(
        "--at",
        metavar="TIME",
        help=f"with --replay: the moment to show: {AT_HELP} (after the start)",
    )


def glue_at_value(argv: Sequence[str]) -> list[str]:
    """``--at -5m`` as ``--at=-5m``: argparse would take a value starting with "-" for a flag."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "--":
            break
        if arg == "--at" and re.fullmatch(r"-[0-9.][0-9.a-z]*", out[i + 1]):
            out[i : i + 2] = [f"--at={out[i + 1]}"]
            break
    return out


def settings_from(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    from vramtop.config import check_flag, load

    flags: dict[str, Any] = {
        "format": "json" if args.json else args.format,
        "gpus": args.gpus,
        "no_color": args.no_color,
        "theme": args.theme,
        "readonly": getattr(args, "readonly", None),
    }
    if args.interval is not None:
        flags["interval"] = check_flag("interval", "--interval", args.interval)
    if args.timeout is not None:
        flags["timeout"] = check_flag("timeout", "--timeout", args.timeout)
    if args.gpus is not None:
        flags["gpus"] = check_flag("gpus", "--gpus", args.gpus)
    flags.update(_remote_settings(args))
    flags.update(_serve_settings(args))
    settings = load(env=env, config_file=args.config, flags=flags)
    if getattr(args, "demo", None):
        from dataclasses import replace

        from vramtop.wiring import demo_targets

        settings = replace(settings, targets=demo_targets(settings.targets))
    return settings


def _remote_settings(args: argparse.Namespace) -> dict[str, Any]:
    from vramtop.config import check_flag

    flags: dict[str, Any] = {}
    pairs = [
        ("prometheus_url", "--prometheus", args.prometheus),
        ("alertmanager_url", "--alertmanager", args.alertmanager),
        ("scrape", "--scrape", args.scrape),
        ("hosts_file", "--hosts-file", args.hosts_file),
        ("instance", "--instance", args.instance),
        ("match", "--match", args.match),
        ("host_label", "--host-label", args.host_label),
        ("profile", "--profile", args.profile),
        ("rate_window", "--rate-window", args.rate_window),
        ("remote_interval", "--remote-interval", args.remote_interval),
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


def _serve_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The exporter's flags; ``vramtop doctor``'s parser has none."""
    from vramtop.config import check_flag

    flags: dict[str, Any] = {}
    if getattr(args, "serve_metrics", None) is not None:
        flags["serve_metrics"] = check_flag("serve_metrics", "--serve-metrics", args.serve_metrics)
    if getattr(args, "serve_metrics_processes", None) is not None:
        flags["serve_metrics_processes"] = args.serve_metrics_processes
    return flags
