"""The live view's first paint: the overview drawn as plain text (vramtop.export.screen) on
the terminal's alternate screen the moment the local sources answer, while Textual is still
being imported; redrawn as remote sources answer. The Textual app then takes the same screen
over: stop() returns only once no write of ours can follow, so none interleaves with its.

Only where stdin and stderr (Textual's output) are a terminal of at least 80x24."""

from __future__ import annotations

import contextlib
import os
import termios
import threading
from collections.abc import Mapping
from typing import Any, Protocol

from vramtop.config import Settings
from vramtop.export.screen import fits, overview
from vramtop.fleet import is_fleet
from vramtop.futures import FIRST_COMPLETED, Future, wait
from vramtop.model import LOCAL_SOURCES, Frame

ENTER = "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J"  # the alternate screen, cursor hidden, cleared
LEAVE = "\x1b[?1049l\x1b[?25h"
SYNC_ON, SYNC_OFF = "\x1b[?2026h", "\x1b[?2026l"  # one update, where the terminal can
POLL_S = 0.05  # how often the painter thread looks whether it was stopped


class Previews(Protocol):
    @property
    def started(self) -> dict[str, Future[Any]]: ...

    def preview(self) -> tuple[Frame, tuple[str, ...]]: ...


class FirstPaint:
    def __init__(
        self,
        collector: Previews,
        settings: Settings,
        fd: int,
        size: os.terminal_size,
        stdin: int = 0,
    ) -> None:
        self._collector = collector
        self._settings = settings
        self._fd = fd
        self._stdin = stdin
        self._size = size
        self._lock = threading.Lock()
        self._stopped = False
        self.painted = 0  # screens written
        self._entered = False
        self._tty_before: list[Any] | None = None
        self._done = threading.Event()  # every source drawn, or nothing (more) to draw
        self._thread = threading.Thread(target=self._run, name="vramtop-firstpaint", daemon=True)

    @classmethod
    def start(
        cls,
        collector: Previews,
        settings: Settings,
        env: Mapping[str, str],
        fd: int = 2,
        stdin: int = 0,
    ) -> FirstPaint | None:
        """The painter, started; None where it does not apply (not a terminal, too small).
        ``fd``: where Textual writes (stderr); ``stdin``: where it reads keys."""
        if env.get("TERM", "dumb") in ("", "dumb"):
            return None
        try:
            if not (os.isatty(stdin) and os.isatty(fd)):
                return None
            size = os.get_terminal_size(fd)
        except (OSError, ValueError):
            return None
        if not fits(size.columns, size.lines):
            return None
        paint = cls(collector, settings, fd, size, stdin)
        paint._thread.start()
        return paint

    def wait_done(self, timeout: float) -> bool:
        """Until every source's answer is drawn (or the painter gave up), at most ``timeout``
        seconds. The caller imports Textual after this: an import beside the painter halves
        the CPU either gets, and the complete first paint came hundreds of ms later."""
        return self._done.wait(timeout)

    def stop(self) -> None:
        """No write of ours after this returns; what was drawn stays for the app to cover.
        The terminal stays in its key mode: the app takes it over as it is."""
        with self._lock:
            self._stopped = True

    @property
    def entered(self) -> bool:
        """Something was drawn: the terminal is on the alternate screen."""
        return self._entered

    def close(self) -> None:
        """After the app: the terminal's modes as they were before the first paint."""
        self.stop()
        self._keys_back()

    def abandon(self) -> None:
        """The app did not start: stop, and give the terminal back as it was."""
        self.stop()
        if self._entered:
            self._write(LEAVE)
        self._keys_back()

    # -- the painter thread ----------------------------------------------------------------

    def _run(self) -> None:
        futures = self._collector.started
        local = [f for name, f in futures.items() if name in LOCAL_SOURCES]
        try:
            while not self._stopped and not all(f.done() for f in local):
                wait(local, timeout=POLL_S)
            shown: tuple[str, ...] | None = None
            while not self._stopped:
                frame, pending = self._collector.preview()
                if is_fleet(frame):  # the app opens on the Hosts screen: not this overview
                    return
                if pending != shown:
                    self._paint(frame, pending)
                    shown = pending
                if not pending:
                    return
                wait([futures[n] for n in pending], timeout=POLL_S, return_when=FIRST_COMPLETED)
        except Exception:
            return
        finally:
            self._done.set()

    def _paint(self, frame: Frame, pending: tuple[str, ...]) -> None:
        s = self._settings
        lines = overview(
            frame,
            self._size.columns,
            self._size.lines,
            loading=pending,
            interval=s.interval,
            model_columns=s.columns,
            local_rules=bool(s.rules),
        )
        # Each line placed by position; the last (the key bar) is left to the app, so the
        # bottom-right cell is never written and the screen never scrolls.
        body = "".join(f"\x1b[{i + 1};1H{line}" for i, line in enumerate(lines[:-1]))
        with self._lock:
            if self._stopped:
                return
            if not self._entered:
                self._keys_raw()
                body = ENTER + body
                self._entered = True
            if self._write(SYNC_ON + body + SYNC_OFF):
                self.painted += 1

    def _write(self, text: str) -> bool:
        data = text.encode("utf-8", "replace")
        try:
            while data:
                data = data[os.write(self._fd, data) :]
        except OSError:
            return False
        return True

    # Keys typed meanwhile wait for the app, unechoed and as the app reads them (Enter as
    # "\r", not a cooked line), so a key pressed during the first paint is not lost or
    # changed. Ctrl-C still interrupts. The app saves this mode and puts it back at its end;
    # close() then restores the one from before.
    def _keys_raw(self) -> None:
        try:
            attrs = termios.tcgetattr(self._stdin)
            raw = [*attrs[:6], list(attrs[6])]
            raw[0] &= ~(
                termios.IXON | termios.IXOFF | termios.ICRNL | termios.INLCR | termios.IGNCR
            )
            raw[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN)
            raw[6][termios.VMIN] = 1
            termios.tcsetattr(self._stdin, termios.TCSANOW, raw)
            self._tty_before = attrs
        except (termios.error, OSError, ValueError):
            pass

    def _keys_back(self) -> None:
        if self._tty_before is None:
            return
        with contextlib.suppress(termios.error, OSError, ValueError):
            termios.tcsetattr(self._stdin, termios.TCSANOW, self._tty_before)
        self._tty_before = None
