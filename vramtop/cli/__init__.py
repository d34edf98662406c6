"""Command line: parse flags, merge settings, build the collector, run one mode."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vramtop import __version__
from vramtop.config import FORMATS, ConfigError, Settings, check_flag, load
from vramtop.entry import write_stdout

if TYPE_CHECKING:
    from vramtop.collector import Collector
    from vramtop.model import Frame
    from vramtop.sources.nvml import GpuSelection

EXIT_USAGE = 2


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
        from vramtop.record.cli import glue_at_value

        argv = sys.argv[1:] if args is None else args
        return super().parse_known_args(glue_at_value(argv), namespace)


def parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="vramtop",
        description="A live monitor for GPU inference hosts: VRAM per model, latency, "
        "queues and alerts on one screen.",
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
    p.add_argument("--demo", action="store_true", help="show the embedded simulated demo host")
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
    p.add_argument("--version", action="version", version=f"vramtop {__version__}")
    from vramtop import remote

    remote.add_flags(p)
    from vramtop.record import cli as record_cli

    record_cli.add_flags(p)
    return p


def settings_from(args: argparse.Namespace, env: Mapping[str, str]) -> Settings:
    flags: dict[str, Any] = {
        "format": "json" if args.json else args.format,
        "gpus": args.gpus,
        "no_color": args.no_color,
        "theme": args.theme,
    }
    if args.interval is not None:
        flags["interval"] = check_flag("interval", "--interval", args.interval)
    if args.timeout is not None:
        flags["timeout"] = check_flag("timeout", "--timeout", args.timeout)
    if args.gpus is not None:
        flags["gpus"] = check_flag("gpus", "--gpus", args.gpus)
    from vramtop import remote

    flags.update(remote.flags_from(args))
    return load(env=env, config_file=args.config, flags=flags)


def build_collector(
    settings: Settings,
    env: Mapping[str, str],
    demo: bool = False,
    password_file: str | None = None,
) -> Collector:
    """The one place that wires sources together, for the CLI, the TUI and the tests."""
    from vramtop import remote
    from vramtop.attribution import Attributor
    from vramtop.collector import Collector
    from vramtop.sources.host import HostSource
    from vramtop.sources.nvml import NvmlSource

    selection = None
    if settings.gpus is not None:
        selection = _selection(settings.gpus, "the GPU list (--gpus / VRAMTOP_GPUS / gpus)")
    elif "CUDA_VISIBLE_DEVICES" in env:
        selection = _selection(env["CUDA_VISIBLE_DEVICES"], "CUDA_VISIBLE_DEVICES")
    if demo:
        from vramtop.demo.host import demo_collector

        return demo_collector(selection, Attributor(settings.attribution), settings.timeout)
    return Collector(
        host=HostSource(),
        nvml=NvmlSource(selection=selection),
        attributor=Attributor(settings.attribution),
        timeout=settings.timeout,
        remote=remote.sources(settings, env, password_file),
    )


def _selection(text: str, where: str) -> GpuSelection:
    from vramtop.sources.nvml import GpuSelection

    try:
        return GpuSelection.parse(text)
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None


def run_once(settings: Settings, args: argparse.Namespace, env: Mapping[str, str]) -> int:
    collector = build_collector(settings, env, args.demo, args.basic_auth_password_file)
    return write_frame(collector.collect(), settings, args)


def write_frame(frame: Frame, settings: Settings, args: argparse.Namespace) -> int:
    """One frame to -o FILE or stdout in the chosen format: --once and --replay --once."""
    from vramtop.export import render

    if args.output:
        try:
            write_file(args.output, render(frame, settings.format, color=False))
        except OSError as err:
            print(f"vramtop: cannot write {args.output}: {err.strerror}", file=sys.stderr)
            return EXIT_USAGE
        return 0
    tty = sys.stdout is not None and sys.stdout.isatty()
    color = settings.format == "text" and not settings.no_color and tty
    return write_stdout(render(frame, settings.format, color=color))


def run_live(settings: Settings, args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """The live view (Textual), built by the same factories the tests use: over the collector,
    recording every frame with ``--record``, or over a recording with ``--replay``. Files are
    opened before the screen is taken, so a bad one is one sentence and exit 2."""
    from vramtop.record.cli import open_recorder, open_replay

    snapshots = Path(settings.snapshot_dir) if settings.snapshot_dir else None
    opened = open_replay(args)
    if opened is not None:
        from vramtop.tui.replay import build_replay_app

        recording, start = opened
        with recording:
            # The first frame is decoded before the screen is taken: a file whose start cannot
            # be read is one sentence and exit 2; a bad frame later is a notification.
            from vramtop.record import RecordingError

            try:
                recording.frame(start)
            except RecordingError as err:
                raise ConfigError(str(err)) from None
            app = build_replay_app(
                settings, recording, start, theme=settings.theme, env=env, snapshot_dir=snapshots
            )
            app.run()
        return app.return_code or 0
    from vramtop.tui.app import build_app

    recorder = open_recorder(args, settings)
    try:
        collector = build_collector(settings, env, args.demo, args.basic_auth_password_file)
        app = build_app(
            settings,
            collector,
            theme=settings.theme,
            env=env,
            snapshot_dir=snapshots,
            recorder=recorder,
        )
        app.run()
    finally:
        if recorder is not None:
            recorder.close()
    return app.return_code or 0


def recording_modes(
    settings: Settings, args: argparse.Namespace, env: Mapping[str, str]
) -> int | None:
    """--replay --once and --record --headless; None when the live view should run."""
    from vramtop.record import cli as record_cli

    record_cli.check_flags(args)
    if args.replay and (args.once or args.json or args.format or args.output):
        return record_cli.replay_once(args, lambda frame: write_frame(frame, settings, args))
    if args.headless:
        return record_cli.run_headless(
            settings,
            args,
            lambda: build_collector(settings, env, args.demo, args.basic_auth_password_file),
        )
    return None


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


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    args = parser().parse_args(argv)
    try:
        settings = settings_from(args, env)
        if (code := recording_modes(settings, args, env)) is not None:
            return code
        if args.once or args.json or args.format or args.output:
            return run_once(settings, args, env)
        return run_live(settings, args, env)
    except ConfigError as err:
        print(f"vramtop: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
