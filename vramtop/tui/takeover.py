"""The terminal driver for an app started over the first paint (vramtop.cli.prepaint), which
already switched to the alternate screen: Textual's own switch is left out, because xterm and
VTE clear the alternate screen on it even when already there, which would show a blank screen
between the first paint and the app's. Everything else is Textual's Linux driver."""

from __future__ import annotations

from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver

ALT_SCREEN = "\x1b[?1049h"


class TakeOverDriver(LinuxDriver):
    _switched = False

    def write(self, data: str) -> None:
        if not self._switched and data == ALT_SCREEN:
            self._switched = True
            return
        super().write(data)


def takeover(driver: type[Driver]) -> type[Driver]:
    """The driver to use over a first paint: this one where Textual would pick Linux's."""
    return TakeOverDriver if driver is LinuxDriver else driver
