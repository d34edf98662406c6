"""The live view with hostile labels and odd values: every row stays within its table, invisible
and direction-changing characters are shown escaped, and no NaN or 309-digit number appears."""

from __future__ import annotations

import math
import re
from dataclasses import replace

from test_tui_support import (
    GIB,
    STEPS,
    ScriptedCollector,
    frame_at,
    make_app,
    run,
    screen_text,
    wait_until,
)

from vramtop.clean import literal, width
from vramtop.model import ModelReading
from vramtop.tui import cells
from vramtop.tui.widgets.frame_table import FrameTable

NAMES = {
    "ltr" + "m" * 10_000: 3,
    "rlo\u202eevil\u2066iso\u2069" * 50: 4,
    "zwj\u200dtab\there\u200b" * 400: 5,
    "[bold]pipe|漢字" * 700: 6,
}
RAW = ("\u202e", "\u2066", "\u2069", "\u200d", "\u200b", "\t")


def hostile_frame():
    base = frame_at(STEPS)
    odd = [
        ModelReading(
            name,
            gib * GIB,
            latency_p50_seconds=math.nan,
            latency_p95_seconds=1e308,
            latency_p99_seconds=math.inf,
            requests_per_second=1e20,
            error_ratio=-math.inf,
            queue_length=math.nan,
            instances=(name,),
        )
        for name, gib in NAMES.items()
    ]
    return replace(base, models=(*base.models, *odd))


def test_hostile_model_rows_stay_within_the_table():
    app = make_app(ScriptedCollector([hostile_frame()]))

    async def go():
        async with app.run_test(size=(120, 50)) as pilot:
            await wait_until(pilot, lambda: app.frames_received >= 1, "a frame")
            await pilot.pause()
            models = app.screen.query_one("#models", FrameTable)
            assert len(models.keys) == 3 + len(NAMES)
            text = screen_text(app)
            for raw in RAW:
                assert raw not in text, repr(raw)
            lines = text.splitlines()
            assert all(width(line) <= 120 for line in lines)
            for name, gib in NAMES.items():
                row = next(line for line in lines if literal(name)[:12] in line)
                assert f"{gib}.0G" in row, row  # the VRAM column is still in this row
                assert not re.search(r"\b(nan|inf)\b|\d{19}", row, re.IGNORECASE), row
                assert "1e308s" in row and "1e20/s" in row
            assert "\\u202e" in text and "\\x09" in text

    run(go())


def test_lit_bounds_and_escapes():
    shown = cells.lit("\u202e" + "x" * 10_000)
    assert shown.plain.startswith("\\u202ex") and len(shown.plain) <= cells.LIT_MAX
    assert shown.plain.endswith("…") and not shown.spans
