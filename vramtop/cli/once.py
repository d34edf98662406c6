"""``--once``: one frame to -o FILE or stdout, in the chosen format."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from vramtop.cli.flags import EXIT_USAGE
from vramtop.config import Settings
from vramtop.entry import exit_quickly, write_stdout

if TYPE_CHECKING:
    from vramtop.model import Frame


def run_once(settings: Settings, args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from vramtop.wiring import build_collector

    collector = build_collector(settings, env, args.demo, args.basic_auth_password_file)
    # The reads start now and the exporters are imported while NVML, /proc and the network
    # answer (their waits release the GIL); collect() then joins the reads already under way.
    collector.start()
    _import_exporter(settings.format)
    frame = collector.collect()
    exit_quickly()  # nothing left to close: the sources' threads are daemons, files written
    return write_frame(frame, settings, args)


def _import_exporter(fmt: str) -> None:
    from vramtop import export

    export.module_for(fmt)


def write_frame(frame: Frame, settings: Settings, args: argparse.Namespace) -> int:
    """One frame to -o FILE or stdout in the chosen format: --once and --replay --once."""
    from vramtop.export import render
    from vramtop.fleet import Rules

    rules = Rules(settings.targets.p95_for, settings.host_label)
    if args.output:
        try:
            text = render(frame, settings.format, False, rules, settings.links)
            write_file(args.output, text)
        except OSError as err:
            print(f"vramtop: cannot write {args.output}: {err.strerror}", file=sys.stderr)
            return EXIT_USAGE
        return 0
    tty = sys.stdout is not None and sys.stdout.isatty()
    color = settings.format == "text" and not settings.no_color and tty
    return write_stdout(render(frame, settings.format, color, rules, settings.links))


def write_file(path: str, text: str) -> None:
    """A regular file is replaced atomically (a reader never sees half a frame); anything else
    (/dev/null, a FIFO, /dev/stdout) is written in place: renaming over it as root would
    replace the device with a file."""
    import stat

    try:
        regular = stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        regular = True
    if not regular:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:  # an error, Ctrl-C or SIGTERM: no half-written temp file stays
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
