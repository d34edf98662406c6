"""The modes that need no live view: ``--record FILE --headless`` and ``--replay FILE --once``.
``open_recorder`` and ``open_replay`` serve the live view."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from vramtop import durations
from vramtop.cli.flags import AT_HELP
from vramtop.config import ConfigError, Settings

if TYPE_CHECKING:
    from vramtop.collector import Collector
    from vramtop.model import Frame
    from vramtop.record import Recorder, Recording

ECHO = 200  # characters of a bad value a message repeats
MAX_DURATION = 100 * 365 * 86400.0  # a longer --duration is a typo, not a plan


def recording_modes(
    settings: Settings, args: argparse.Namespace, env: Mapping[str, str]
) -> int | None:
    """--replay --once and --record --headless; None when the live view should run."""
    from vramtop.cli.once import write_frame
    from vramtop.wiring import build_collector

    check_flags(args)
    if args.replay and (args.once or args.json or args.format or args.output):
        return replay_once(args, lambda frame: write_frame(frame, settings, args))
    if args.headless:
        return run_headless(
            settings,
            args,
            lambda: build_collector(settings, env, args.demo, args.basic_auth_password_file),
        )
    return None


def check_flags(args: argparse.Namespace) -> None:
    if args.replay:
        others = [
            ("--demo", args.demo),
            ("--record", args.record),
            ("--prometheus", args.prometheus),
            ("--alertmanager", args.alertmanager),
            ("--scrape", args.scrape),
            ("--hosts-file", args.hosts_file),
            ("--headless", args.headless),
            ("--duration", args.duration),
        ]
        for flag, given in others:
            if given:
                raise ConfigError(
                    f"--replay shows a recording, so it cannot be combined with {flag}"
                )
    elif args.at is not None:
        raise ConfigError("--at picks a moment of a recording: use it with --replay FILE")
    if args.headless and not args.record:
        raise ConfigError("--headless records without the live view: use it with --record FILE")
    if args.duration is not None and not args.headless:
        raise ConfigError(
            "--duration ends a headless recording: use it with --record FILE --headless"
        )
    if args.duration is not None:
        check_duration(args.duration)
    if args.record:
        one_shot = [
            ("--once", args.once),
            ("--json", args.json),
            ("--format", args.format),
            ("--output", args.output),
        ]
        for flag, given in one_shot:
            if given:
                raise ConfigError(
                    f"--record records every frame, so it cannot be combined with {flag}"
                )


def check_duration(text: str) -> float:
    """``--duration`` in seconds; ConfigError unless it is a span from 1 ms to MAX_DURATION."""
    try:
        duration = durations.parse(text)
    except ValueError:
        duration = 0.0
    if duration <= 0:
        raise ConfigError(f"--duration must be a span like 10m or 24h, got {echo(text)}")
    if duration > MAX_DURATION:
        raise ConfigError(
            f"--duration {echo(text)} is longer than the longest a recording may run, "
            f"{MAX_DURATION / 86400 / 365:.0f} years: leave it out to record until stopped"
        )
    return duration


def echo(value: str) -> str:
    """A value from the user as a message shows it: quoted, at most ECHO characters."""
    return repr(value if len(value) <= ECHO else value[: ECHO - 1] + "\u2026")


def _iso(epoch: float) -> str:
    from vramtop.model import iso_utc

    try:
        return iso_utc(epoch)
    except (OverflowError, ValueError, OSError):  # beyond what a calendar date can say
        return "before the year 1" if epoch < 0 else "after the year 9999"


def moment(text: str, rec: Recording) -> float:
    """``--at`` as an epoch: ``-SPAN`` before the recording's end, ``+SPAN`` after its start, or
    an ISO-8601 time."""
    try:
        if text[:1] in "+-" and text[1:2].isdigit():
            span = durations.parse(text[1:])
            return rec.end - span if text[0] == "-" else rec.start + span
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"--at must be a time like {AT_HELP}, got {echo(text)}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def open_recording(path: str) -> Recording:
    from vramtop.record import Recording, RecordingError

    try:
        rec = Recording.open(path)
    except RecordingError as err:
        raise ConfigError(str(err)) from None
    if not len(rec):
        rec.close()
        raise ConfigError(f"{path} holds no frames")
    return rec


def open_replay(args: argparse.Namespace) -> tuple[Recording, int] | None:
    """For the live view: the recording named by ``--replay`` and the frame ``--at`` names (the
    last one without it). ConfigError carries the sentence for a bad file or moment."""
    if not args.replay:
        return None
    rec = open_recording(args.replay)
    if args.at is None:
        return rec, len(rec) - 1
    epoch = moment(args.at, rec)
    i = rec.index_at(epoch)
    if i is None or epoch > rec.end:
        start, end = _iso(rec.start), _iso(rec.end)
        rec.close()
        at = echo(args.at)[1:-1]
        shown = f"{at} ({_iso(epoch)})" if args.at[:1] in "+-" else at
        raise ConfigError(
            f"--at {shown} is outside the recording, which runs from {start} to {end}"
        )
    return rec, i


def open_recorder(args: argparse.Namespace, settings: Settings) -> Recorder | None:
    """For the live view: the Recorder for ``--record`` (call ``append`` with every Frame,
    ``close`` at exit), opened before the screen is taken so a bad path is one sentence."""
    if not args.record:
        return None
    from vramtop.record import Recorder, RecordingError

    try:
        return Recorder(args.record, interval=settings.interval)
    except RecordingError as err:
        raise ConfigError(str(err)) from None


def replay_once(args: argparse.Namespace, write: Callable[[Frame], int]) -> int:
    """``--replay FILE --once``: the frame at ``--at`` through the same exporters as --once."""
    from vramtop.record import RecordingError

    opened = open_replay(args)
    assert opened is not None
    rec, i = opened
    with rec:
        try:
            frame = rec.frame(i)
        except RecordingError as err:
            raise ConfigError(str(err)) from None
    return write(frame)


def run_headless(
    settings: Settings, args: argparse.Namespace, make_collector: Callable[[], Collector]
) -> int:
    """Record until ``--duration`` has passed or SIGINT/SIGTERM; either way the file ends with a
    complete frame and the exit status is 0; a recording that cannot be written is exit 2."""
    duration = None if args.duration is None else check_duration(args.duration)
    from vramtop.cli.signals import stop_on_signals, wait
    from vramtop.config import MIN_INTERVAL
    from vramtop.feeds import Arrived, Message
    from vramtop.feeds.live import LiveFeed
    from vramtop.feeds.recorded import Recorded

    recorder = open_recorder(args, settings)
    assert recorder is not None
    first = threading.Event()
    failed: list[str] = []
    feed = None
    with stop_on_signals() as stop:

        def post(message: Message) -> None:  # the feed's thread
            if isinstance(message, Arrived):
                first.set()  # appended already: the recording holds a frame
            elif message.kind == "record" and message.reason is not None:
                failed.append(message.reason)  # a recording that cannot be written ends here
                stop.set()

        try:
            collector = make_collector()
            until = f"for {args.duration}" if duration is not None else "until SIGINT or SIGTERM"
            print(
                f"vramtop: recording to {args.record} every {settings.interval:g} s {until}",
                file=sys.stderr,
                flush=True,
            )
            # The live view's feed and recording wrapper: collection on a daemon worker, so a
            # signal ends the recording at once even while a source hangs (the frame then being
            # collected is dropped; the file ends with the last complete one).
            feed = Recorded(LiveFeed(collector, settings.interval, minimum=MIN_INTERVAL), recorder)
            feed.start(post)
            wait(stop, duration)
            while not (stop.is_set() or first.is_set()):  # a --duration shorter than a refresh
                stop.wait(0.05)
        finally:
            if feed is not None:
                feed.stop()  # closes the recorder after the append in progress, if any
            recorder.close()
    if failed:
        raise ConfigError(failed[0])
    return 0
