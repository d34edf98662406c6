"""``vramtop doctor [--prometheus URL | --scrape URL ...]``: the one-shot checks of
vramtop.doctor, with the remote flags (and credentials) of the rest of vramtop."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence

from vramtop.cli.flags import EXIT_USAGE, _Parser, _remote_flags, settings_from
from vramtop.entry import write_stdout

EXIT_FAILED = 1


class _DoctorParser(_Parser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"vramtop doctor: {message} (see vramtop doctor --help)\n")


def parser() -> argparse.ArgumentParser:
    p = _DoctorParser(
        prog="vramtop doctor",
        description="Check why a figure is missing: NVML and the driver, PID-namespace "
        "visibility, Prometheus, its targets, each profile's metrics, Alertmanager. "
        "Exits 1 when a check FAILs.",
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    p.add_argument("--timeout", metavar="SECONDS", help="how long a server may take (default 5s)")
    p.add_argument("--config", metavar="FILE", help="config file")
    _remote_flags(p)
    return p


def run_doctor(argv: Sequence[str], env: Mapping[str, str]) -> int:
    from vramtop import wiring
    from vramtop.doctor import Report
    from vramtop.doctor.local import check_nvml
    from vramtop.doctor.remote import check_alertmanager, check_prometheus, check_scrape

    args = parser().parse_args(argv)
    fmt = args.format
    # settings_from reads the general flags too; doctor has none of them.
    for name in ("json", "gpus", "no_color", "theme", "interval"):
        setattr(args, name, None)
    args.format = None
    settings = settings_from(args, env)
    password_file = args.basic_auth_password_file
    targets = wiring.scrape_targets(settings)
    remote = settings.prometheus_url or targets or settings.alertmanager_url
    report = Report()
    check_nvml(report, required=not remote)
    if remote:
        chosen, forced = wiring.profiles(settings, env)
        creds = wiring.credentials(settings, env, password_file)

        def ep(url: str):  # the same credentials for every server
            return wiring.endpoint(url, settings, env, password_file, creds)

        if settings.prometheus_url:
            check_prometheus(
                report,
                ep(settings.prometheus_url),
                chosen,
                forced,
                settings.instance,
                settings.match,
                alertmanager_given=bool(settings.alertmanager_url),
            )
        if settings.alertmanager_url:
            check_alertmanager(report, ep(settings.alertmanager_url))
        for url in targets:
            check_scrape(report, ep(url), chosen, forced)
    if write_stdout(report.json() if fmt == "json" else report.text()):
        return 2
    return EXIT_FAILED if report.failed else 0
