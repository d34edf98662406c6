"""What every source shares: the error that becomes its status line."""

from __future__ import annotations


class SourceError(Exception):
    """A source could not produce a reading; the message is one sentence for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
