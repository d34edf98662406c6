"""``--serve-metrics``: headless, the collector on its own schedule, the latest Frame served on
/metrics by prometheus_client until SIGINT or SIGTERM (exit 0)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

from vramtop.config import ConfigError, Settings


def serve_mode(settings: Settings, args: argparse.Namespace, env: Mapping[str, str]) -> int | None:
    """The exporter when asked for (flag, config or environment); None for any other mode. The
    flag with another mode is a contradiction; the config's setting yields to another mode."""
    others = [
        flag
        for flag, on in (
            ("--once", args.once or args.json or args.format or args.output),
            ("--record", args.record),
            ("--replay", args.replay),
            ("--headless", args.headless),
        )
        if on
    ]
    if args.serve_metrics is not None and others:
        raise ConfigError(f"--serve-metrics runs on its own: it cannot be used with {others[0]}")
    if settings.serve_metrics is None or others:
        return None
    return run_serve(settings, args, env)


def run_serve(settings: Settings, args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from prometheus_client.exposition import start_wsgi_server

    from vramtop.cli.signals import stop_on_signals, wait
    from vramtop.config import MIN_INTERVAL
    from vramtop.feeds import Arrived, Message
    from vramtop.feeds.live import LiveFeed
    from vramtop.serve import FrameExporter, registry_for
    from vramtop.wiring import build_collector

    assert settings.serve_metrics is not None
    addr, port = settings.serve_metrics
    where = _where(addr, port)
    collector = build_collector(settings, env, args.demo, args.basic_auth_password_file)
    exporter = FrameExporter(processes=settings.serve_metrics_processes)
    tls = _tls(args)
    try:
        httpd, _ = start_wsgi_server(port, addr=addr, registry=registry_for(exporter), **tls)
    except OSError as err:  # in use, no such address, not ours to bind, a bad certificate
        why = err.strerror or str(err)
        raise ConfigError(f"cannot serve metrics on {where}: {why}") from None

    def post(message: Message) -> None:  # the feed's thread
        if isinstance(message, Arrived):
            exporter.update(message.frame)

    feed = LiveFeed(collector, settings.interval, minimum=MIN_INTERVAL)
    with stop_on_signals() as stop:
        try:
            shown = _where(addr, httpd.server_address[1])  # port 0 asks for a free one: say which
            scheme = "https" if tls else "http"
            print(
                f"vramtop: serving metrics on {scheme}://{shown}/metrics, collecting every "
                f"{settings.interval:g} s, until SIGINT or SIGTERM",
                file=sys.stderr,
                flush=True,
            )
            feed.start(post)
            wait(stop)
        finally:
            feed.stop()
            httpd.shutdown()
            httpd.server_close()
    return 0


def _where(addr: str, port: int) -> str:
    return f"[{addr}]:{port}" if ":" in addr else f"{addr}:{port}"


def _tls(args: argparse.Namespace) -> dict[str, object]:
    """prometheus_client's TLS: a certificate and its key, and optionally client certificates
    signed by a CA (then required)."""
    cert, key, ca = args.serve_metrics_cert, args.serve_metrics_key, args.serve_metrics_client_ca
    if (cert is None) != (key is None):
        raise ConfigError("--serve-metrics-cert and --serve-metrics-key go together")
    if ca is not None and cert is None:
        raise ConfigError(
            "--serve-metrics-client-ca needs --serve-metrics-cert and --serve-metrics-key"
        )
    if cert is None:
        return {}
    for path in (cert, key, ca):
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"cannot serve metrics over HTTPS: {path} is not a readable file")
    return {"certfile": cert, "keyfile": key, "client_cafile": ca, "client_auth_required": bool(ca)}
