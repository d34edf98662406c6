"""Background threads for the live view: the collection loop's one thread, and one-off jobs.

They are daemon threads: a collector stuck in a hung driver call can never keep ``q`` from
quitting (a Textual thread worker runs on the event loop's executor, which is joined at exit).
Neither touches a widget: results go back through ``deliver``, which posts a Message.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from vramtop import redact
from vramtop.clean import one_line
from vramtop.model import Frame


class Poller:
    """Runs ``collect()`` on one thread, one call at a time, only when asked.

    ``request()`` starts a collection unless one is still running (then it returns False):
    the app asks again only after the previous Frame arrived, so refreshes never overlap.
    """

    def __init__(
        self,
        collect: Callable[[], Frame],
        deliver: Callable[[Frame], Any],
        fail: Callable[[str], Any],
    ) -> None:
        self._collect = collect
        self._deliver = deliver
        self._fail = fail
        self._go = threading.Event()
        self._lock = threading.Lock()
        self._busy = False
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.started = 0  # collections started, for tests and the status line
        self.busy_since: float | None = None

    @property
    def busy(self) -> bool:
        return self._busy

    def request(self, now: float | None = None) -> bool:
        with self._lock:
            if self._busy or self._stopped:
                return False
            self._busy = True
            self.busy_since = now
            self.started += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vramtop-poll", daemon=True)
                self._thread.start()
            self._go.set()
            return True

    def stop(self) -> None:
        self._stopped = True
        self._go.set()

    def _run(self) -> None:
        while True:
            self._go.wait()
            self._go.clear()
            if self._stopped:
                return
            try:
                frame = self._collect()
            except Exception as err:  # the collector should not raise; keep the loop alive
                self._finish()
                self._fail(f"collection failed: {one_line(redact.text(err))}")
            else:
                self._finish()
                self._deliver(frame)

    def _finish(self) -> None:
        with self._lock:
            self._busy = False
            self.busy_since = None


def run_detached(job: Callable[[], Any], name: str = "vramtop-job") -> None:
    """Runs ``job`` on a daemon thread; ``job`` reports back itself (by posting a Message)."""
    threading.Thread(target=job, name=name, daemon=True).start()
