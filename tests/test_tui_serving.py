"""The serving figures on screen: KV% and TTFT columns in the Models table (automatic, from the
config's ``columns``, from the palette), Triton's mean marked ``~`` with its legend, and the
model drill-down's KV cache, TTFT/ITL and tokens/s charts with their targets."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

from test_tui_support import (
    STEPS,
    ScriptedCollector,
    frame_at,
    make_app,
    run,
    screen_text,
    wait_until,
)

from vramtop.config import Settings, Targets
from vramtop.history import History
from vramtop.model import Frame, freeze
from vramtop.serving import MEAN_LEGEND
from vramtop.tui.screens.model import ModelScreen
from vramtop.tui.widgets.chart import Chart
from vramtop.tui.widgets.frame_table import FrameTable

LLAMA = {
    "kv_cache_usage_ratio": 0.625,
    "ttft_p95_seconds": 0.3,
    "inter_token_p95_seconds": 0.035,
    "prompt_tokens_per_second": 2000.0,
    "generation_tokens_per_second": 500.0,
    "running_requests": 7.0,
}


def serving_frame(step: int = STEPS, kv: float = 0.625) -> Frame:
    """The test frame with llama-70b served by vLLM and qwen-7b by Triton (means only)."""
    f = frame_at(step)
    models = []
    for m in f.models:
        if m.name == "llama-70b":
            m = replace(m, profile="vllm", extras=freeze({**LLAMA, "kv_cache_usage_ratio": kv}))
        elif m.name == "qwen-7b":
            m = replace(
                m,
                profile="triton",
                latency_p95_seconds=None,
                extras=freeze({"latency_mean_seconds": 0.012}),
                unavailable=freeze({"latency_p95_seconds": "Triton exports no quantiles here"}),
            )
        models.append(m)
    return replace(f, models=tuple(models))


def models_table(app) -> FrameTable:
    return app.screen.query_one("#models", FrameTable)


def columns(table: FrameTable) -> list[str]:
    return [c.key for c, _ in table._layout]


async def started(pilot, app) -> None:
    await wait_until(pilot, lambda: app.frames_received >= 1, "the first frame")
    await pilot.pause()


def test_kv_and_ttft_columns_join_when_a_model_has_them_and_fit_80x24():
    app = make_app(ScriptedCollector([serving_frame()]))

    async def go():
        async with app.run_test(size=(160, 48)) as pilot:
            await started(pilot, app)
            t = models_table(app)
            assert [c.key for c in t.spec][:6] == ["name", "vram", "kv", "p50", "p95", "ttft"]
            row = t.keys.index("llama-70b")
            assert t.get_cell(row, "kv").plain == "62%"
            assert t.get_cell(row, "ttft").plain == "300ms"
            qwen = t.keys.index("qwen-7b")
            assert t.get_cell(qwen, "p95").plain == "~12ms"  # a mean, marked
            assert t.get_cell(qwen, "kv").plain == "–"
            assert MEAN_LEGEND in screen_text(app)
            await pilot.resize_terminal(80, 24)
            await pilot.pause()
            shown = columns(t)
            assert {"name", "vram", "kv", "p95", "ttft", "rps", "err", "queue"} <= set(shown)
            assert sum(w + 2 for _, w in t._layout) <= 79

    run(go())


def test_without_serving_figures_the_table_is_as_before():
    app = make_app(ScriptedCollector([frame_at(STEPS)]))

    async def go():
        async with app.run_test(size=(160, 48)) as pilot:
            await started(pilot, app)
            keys = [c.key for c in models_table(app).spec]
            assert "kv" not in keys and "ttft" not in keys

    run(go())


def test_configured_columns_are_honoured_and_the_palette_toggles_one():
    settings = Settings(interval=3600.0, columns=("vram", "kv", "tokens", "running"))
    app = make_app(ScriptedCollector([serving_frame()]), settings=settings)

    async def go():
        async with app.run_test(size=(160, 48)) as pilot:
            await started(pilot, app)
            t = models_table(app)
            assert columns(t) == ["name", "vram", "kv", "tokens", "running"]
            row = t.keys.index("llama-70b")
            assert t.get_cell(row, "tokens").plain == "500"
            assert t.get_cell(row, "running").plain == "7"
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert "Column: ITL" in titles and "Column: Model" not in titles
            await pilot.press("ctrl+p")
            await wait_until(pilot, lambda: type(app.screen).__name__ == "CommandPalette")
            await pilot.press(*"Column: ITL")
            await pilot.pause(0.3)
            await pilot.press("enter")
            await wait_until(pilot, lambda: "itl" in columns(models_table(app)), "ITL shown")
            assert t.get_cell(t.keys.index("llama-70b"), "itl").plain == "35ms"
            app.toggle_model_column("kv")
            await pilot.pause()
            assert columns(t) == ["name", "vram", "itl", "tokens", "running"]  # table order

    run(go())


def test_drill_down_charts_kv_ttft_and_tokens_with_targets():
    history = History()
    for step in range(STEPS):
        history.add(serving_frame(step, kv=0.5 + step / 1000))
    targets = Targets(ttft_p95_seconds=0.25, kv_cache_warning_ratio=0.9)
    settings = Settings(interval=3600.0, targets=targets)
    app = make_app(ScriptedCollector([serving_frame()]), history=history, settings=settings)

    async def go():
        async with app.run_test(size=(160, 48)) as pilot:
            await started(pilot, app)
            t = models_table(app)
            t.focus()
            t.move_cursor(t.keys.index("llama-70b"))
            await pilot.press("enter")
            screen = app.screen
            assert isinstance(screen, ModelScreen) and screen.has_class("serving")
            await pilot.pause()
            kv = screen.query_one("#kv", Chart)
            assert kv.display and kv.spec.target == 0.9
            assert kv.spec.lines[0].points[-1][1] == 0.625
            assert len(kv.spec.lines[0].points) == STEPS + 1  # history plus this frame
            ttft = screen.query_one("#ttft", Chart)
            assert ttft.spec.target == 0.25 and "┄250ms" in str(ttft.border_title)
            assert [ln.label for ln in ttft.spec.lines] == ["TTFT", "ITL"]
            assert ttft.spec.lines[1].points[-1][1] == 0.035
            tokens = screen.query_one("#tokens", Chart)
            assert [ln.points[-1][1] for ln in tokens.spec.lines] == [2000.0, 500.0]
            text = screen_text(app)
            assert "KV cache 62.5%" in text and "TTFT p95 300 ms" in text
            await pilot.resize_terminal(80, 24)
            await pilot.pause()
            shown = [c for c in screen.query(Chart) if c.display]
            assert len(shown) == 8 and all(c.region.height >= 5 for c in shown)
            await pilot.resize_terminal(160, 48)
            await pilot.pause()
            await pilot.press("escape")
            t.move_cursor(t.keys.index("qwen-7b"))
            await pilot.press("enter")
            screen = app.screen
            assert isinstance(screen, ModelScreen) and not screen.has_class("serving")
            assert not screen.query_one("#kv", Chart).display
            assert "Triton exports no quantiles here" in screen_text(app)

    run(go())


def test_a_bad_column_in_the_config_is_one_sentence_and_exit_2(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('columns = ["name", "kvv"]\n')
    out = subprocess.run(
        [sys.executable, "-m", "vramtop", "--once", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == (
        f"vramtop: {path}: key 'columns' names no Models table column 'kvv' (columns: name, "
        "vram, kv, p50, p95, ttft, itl, p99, tokens, running, rps, err, queue, preempt, gpus, "
        "hosts, via)\n"
    )


def test_columns_from_the_environment_and_a_bad_one_names_the_variable():
    from vramtop.config import ConfigError, load

    settings = load(env={"VRAMTOP_COLUMNS": "name, vram,kv,ttft"}, config_file=None)
    assert settings.columns == ("name", "vram", "kv", "ttft")
    try:
        load(env={"VRAMTOP_COLUMNS": "vram,TTFT"})
    except ConfigError as err:
        assert str(err).startswith("VRAMTOP_COLUMNS names no Models table column 'TTFT'")
    else:
        raise AssertionError("VRAMTOP_COLUMNS=vram,TTFT was accepted")


def serving_app():
    history = History()
    for step in range(STEPS):
        history.add(serving_frame(step, kv=0.5 + step / 1000))
    targets = Targets(ttft_p95_seconds=0.25, kv_cache_warning_ratio=0.6)
    settings = Settings(interval=3600.0, targets=targets)
    return make_app(ScriptedCollector([serving_frame()]), history=history, settings=settings)


def after(*keys: str):
    async def run_before(pilot) -> None:
        await wait_until(pilot, lambda: pilot.app.frames_received >= 1, "the first frame")
        await pilot.pause()
        if keys:
            await pilot.press(*keys)
        await pilot.pause()

    return run_before


def test_overview_with_serving_columns_looks_like_this(snap_compare):
    assert snap_compare(serving_app(), terminal_size=(80, 24), run_before=after())


def test_serving_drill_down_looks_like_this(snap_compare):
    # Tab to the models (llama-70b first, by VRAM), Enter.
    keys = after("tab", "enter")
    assert snap_compare(serving_app(), terminal_size=(80, 24), run_before=keys)
