"""What every source shares: the error that becomes its status line."""

from __future__ import annotations


class SourceError(Exception):
    """A source could not produce a reading; the message is one sentence for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def one_line(text: object, limit: int = 300) -> str:
    """Squash an error message from outside into one short printable line."""
    line = " ".join(str(text).split())
    line = "".join(ch if ch.isprintable() else "?" for ch in line)
    return line if len(line) <= limit else line[: limit - 1] + "…"
