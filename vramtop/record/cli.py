"""The recording flags, and the modes that need no live view: ``--record FILE --headless`` and
``--replay FILE --once``. ``open_recorder`` and ``open_replay`` serve the live view."""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from vramtop import durations
from vramtop.config import ConfigError, Settings

if TYPE_CHECKING:
    from vramtop.collector import Collector
    from vramtop.model import Frame
    from vramtop.record import Recorder, Recording

ECHO = 200  # characters of a bad value a message repeats
MAX_DURATION = 100 * 365 * 86400.0  # a longer --duration is a typo, not a plan
_AT_HELP = "2026-11-28T03:12:00Z (UTC unless it names a zone), -5m (before the end) or +90s"


def add_flags(p: argparse.ArgumentParser) -> None:
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
        help=f"with --replay: the moment to show: {_AT_HELP} (after the start)",
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


def check_flags(args: argparse.Namespace) -> None:
    if args.replay:
        others = [
            ("--demo", args.demo),
            ("--record", args.record),
            ("--prometheus", args.prometheus),
            ("--alertmanager", args.alertmanager),
            ("--scrape", args.scrape),
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
        raise ConfigError(f"--at must be a time like {_AT_HELP}, got {echo(text)}") from None
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
    complete frame and the exit status is 0."""
    from vramtop.record import RecordingError

    duration = None
    if args.duration is not None:
        try:
            duration = durations.parse(args.duration)
            if duration <= 0:
                raise ValueError(args.duration)
        except ValueError:
            raise ConfigError(
                f"--duration must be a span like 10m or 24h, got {args.duration!r}"
            ) from None
    recorder = open_recorder(args, settings)
    assert recorder is not None
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        collector = make_collector()
        until = f"for {args.duration}" if duration is not None else "until SIGINT or SIGTERM"
        print(
            f"vramtop: recording to {args.record} every {settings.interval:g} s {until}",
            file=sys.stderr,
            flush=True,
        )
        _loop(collector, recorder, settings.interval, duration, stop)
    except RecordingError as err:
        raise ConfigError(str(err)) from None
    finally:
        recorder.close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0


def _loop(
    collector: Collector,
    recorder: Recorder,
    interval: float,
    duration: float | None,
    stop: threading.Event,
) -> None:
    started = time.monotonic()
    due = started
    while not stop.is_set():
        frame = _collect_unless_stopped(collector, stop)
        if frame is None:
            return
        recorder.append(frame)
        # The next refresh is scheduled after this one finished: a slow source never piles up.
        due = max(due + interval, time.monotonic())
        if duration is not None and due - started >= duration:
            return
        stop.wait(due - time.monotonic())


def _collect_unless_stopped(collector: Collector, stop: threading.Event) -> Frame | None:
    """``collect()`` on a daemon thread, so SIGINT/SIGTERM end the recording at once even while
    a source hangs; the frame then being collected is dropped, the file ends with the last
    complete one."""
    box: list[Frame | BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append(collector.collect())
        except BaseException as err:  # raised again on the recording thread
            box.append(err)
        finally:
            done.set()

    threading.Thread(target=run, name="vramtop-record-collect", daemon=True).start()
    while not done.wait(0.05):
        if stop.is_set():
            return None
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]
