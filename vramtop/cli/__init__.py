"""The command line: flags (flags.py) become Settings, then one mode runs: one frame (once.py),
a recording without a screen or one frame of a recording (record.py), or the live view
(live.py), or the exporter (serve.py); or ``vramtop doctor`` (doctor.py). Sources are wired in
vramtop.wiring."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from vramtop.cli.flags import EXIT_USAGE, parser, settings_from


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["doctor"]:  # the one word command; every other command line is flags
        from vramtop.cli.doctor import run_doctor
        from vramtop.config import ConfigError

        try:
            return run_doctor(argv[1:], env)
        except ConfigError as err:
            print(f"vramtop: {err}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (entry.Terminated: 143)
            return getattr(stop, "code", 130)
    args = parser().parse_args(argv)
    # Only now, with a mode to run: --help and --version stop above on argparse alone.
    local = not (args.demo or args.replay)
    if local:
        # The host CPU window opens first and NVML starts on its own thread: the imports
        # and the config below fill the one and overlap the other.
        from vramtop.sources import cpu_window, nvml_start

        cpu_window.start_early()
        nvml_start.start_early()
    from vramtop.config import ConfigError

    try:
        settings = settings_from(args, env)
        from vramtop.cli.serve import serve_mode

        if (code := serve_mode(settings, args, env)) is not None:
            return code
        from vramtop.cli.record import recording_modes

        if (code := recording_modes(settings, args, env)) is not None:
            return code
        if args.once or args.json or args.format or args.output:
            from vramtop.cli.once import run_once

            return run_once(settings, args, env)
        from vramtop.cli.live import run_live

        return run_live(settings, args, env)
    except ConfigError as err:
        print(f"vramtop: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as stop:
        return getattr(stop, "code", 130)
    finally:
        if local:
            nvml_start.release_early()
