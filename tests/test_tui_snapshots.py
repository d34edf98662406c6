"""How the live view looks, at 80x24 and 160x48 (pytest-textual-snapshot).

Deterministic: a fixed Frame sequence in history, a collector that returns one fixed Frame, a
fixed clock, a refresh interval too long to tick during the test, no cursor blink. Update with
``pytest tests/test_tui_snapshots.py --snapshot-update`` and look at the SVGs before committing.
"""

from __future__ import annotations

import pytest
from test_tui_support import (
    STEPS,
    ScriptedCollector,
    frame_at,
    make_app,
    prefilled_history,
    wait_until,
)

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((160, 48), id="160x48")]


def app_with_history():
    return make_app(ScriptedCollector([frame_at(STEPS)]), history=prefilled_history())


def after(*keys: str):
    async def run_before(pilot) -> None:
        app = pilot.app
        await wait_until(pilot, lambda: app.frames_received >= 1, "the first frame")
        await pilot.pause()
        if keys:
            await pilot.press(*keys)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", SIZES)
def test_overview(snap_compare, size):
    assert snap_compare(app_with_history(), terminal_size=size, run_before=after())


@pytest.mark.parametrize("size", SIZES)
def test_model_drill_down(snap_compare, size):
    # Tab to the models, down to qwen-7b (beyond its targets), Enter.
    keys = after("tab", "j", "enter")
    assert snap_compare(app_with_history(), terminal_size=size, run_before=keys)


@pytest.mark.parametrize("size", SIZES)
def test_gpu_drill_down(snap_compare, size):
    # GPU 2: MIG mode on, three processes (one whose owner is not visible).
    keys = after("j", "j", "enter")
    assert snap_compare(app_with_history(), terminal_size=size, run_before=keys)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, size):
    assert snap_compare(app_with_history(), terminal_size=size, run_before=after("question_mark"))
