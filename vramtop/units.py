"""Numbers with their units, formatted once, in two renderings."""

from __future__ import annotations

NA = "n/a"
HUGE = 1e15  # beyond this a number is shown in e-notation, never as all its digits
