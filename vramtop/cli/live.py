"""The live view (Textual), over the collector or over a recording with ``--replay``."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from vramtop.config import ConfigError, Settings

FIRST_PAINT_WAIT_S = 0.5


def run_live(settings: Settings, args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """The live view (Textual), built by the same factories the tests use: over the collector,
    recording every frame with ``--record``, or over a recording with ``--replay``. Files are
    opened before the screen is taken, so a bad one is one sentence and exit 2."""
    from vramtop.cli.record import open_recorder, open_replay

    snapshots = Path(settings.snapshot_dir) if settings.snapshot_dir else None
    opened = open_replay(args)
    if opened is not None:
        from vramtop.tui.factory import build_replay_app

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
    from vramtop.cli.prepaint import FirstPaint
    from vramtop.wiring import build_collector

    recorder = open_recorder(args, settings)
    try:
        collector = build_collector(settings, env, args.demo, args.basic_auth_password_file)
        collector.start(local_first=True)  # the first frame's reads run while Textual is imported
        # ... and drawn as plain text the moment the local ones answer, before Textual is up.
        paint = FirstPaint.start(collector, settings, env)
        try:
            if paint is not None:
                # The reads mostly wait on the driver, /proc and the network; the paint is
                # CPU. Sources slower than this let Textual's import go on beside them.
                paint.wait_done(FIRST_PAINT_WAIT_S)
            from vramtop.tui.factory import build_app

            if paint is not None:
                paint.stop()  # from here on the screen is the app's
            app = build_app(
                settings,
                collector,
                theme=settings.theme,
                env=env,
                snapshot_dir=snapshots,
                recorder=recorder,
                painted=paint is not None and paint.entered,
            )
        except BaseException:
            if paint is not None:
                paint.abandon()
            raise
        try:
            app.run()
        except BaseException:
            if paint is not None and getattr(app, "_driver", None) is None:
                paint.abandon()  # the app never took the terminal
            raise
        finally:
            if paint is not None:
                paint.close()
    finally:
        if recorder is not None:
            recorder.close()
    return app.return_code or 0
