"""Signalling processes from the live view (Pilot): real child processes reported by the fake
NVML through the real collector, a key on their row, the confirmation, and the child really
exits; the row stays until NVML stops reporting it. Read-only and replay have no actions; a
remote process is refused with its sentence."""

from __future__ import annotations

import re
import signal
import time
from dataclasses import replace

from test_tui_replay import recording, recording_file, replay_app  # noqa: F401 (fixtures)
from test_tui_support import STEPS, ScriptedCollector, frame_at, make_app, run, wait_until

from vramtop.attribution import Attributor
from vramtop.collector import Collector
from vramtop.config import Settings
from vramtop.demo.scenario import Gpu, Process, Scenario
from vramtop.model import ProcessReading
from vramtop.sources.host import HostSource
from vramtop.sources.nvml import NvmlSource
from vramtop.tui.app import VramtopApp
from vramtop.tui.screens.confirm import ConfirmSignal, stake_text
from vramtop.tui.screens.gpu import GpuScreen
from vramtop.tui.screens.help import HelpScreen
from vramtop.tui.screens.model import ModelScreen
from vramtop.tui.screens.overview import OverviewScreen
from vramtop.tui.widgets.frame_table import FrameTable
from vramtop.tui.widgets.status_bar import StatusBar

GIB = 2**30


def two_ranks(spawn):
    """Two real processes serving one model on GPUs 0 and 1, and one of another model on 1."""
    rank0 = spawn("vllm", "serve", "--served-model-name", "tp-llama", "--rank", "0")
    rank1 = spawn("vllm", "serve", "--served-model-name", "tp-llama", "--rank", "1")
    other = spawn("vllm", "serve", "--served-model-name", "small-qwen")
    gpus = (
        Gpu(uuid="GPU-sig-0", processes=(Process(rank0.pid, 30 * GIB),)),
        Gpu(uuid="GPU-sig-1", processes=(Process(rank1.pid, 30 * GIB), Process(other.pid, GIB))),
    )
    return rank0, rank1, other, gpus


def live_app(settings: Settings | None = None) -> tuple[VramtopApp, NvmlSource]:
    nvml = NvmlSource()
    collector = Collector(HostSource(), nvml, attributor=Attributor(), timeout=10)
    app = make_app(collector, settings=settings or Settings(interval=0.3), clock=time.time)
    return app, nvml


def procs(app: VramtopApp) -> FrameTable:
    return app.screen.query_one("#procs", FrameTable)


def status(app: VramtopApp) -> str:
    return app.screen.query_one(StatusBar).text


def notes(app: VramtopApp) -> list[str]:
    return [n.message for n in app._notifications]


def test_terminate_from_the_gpu_drill_down_after_confirming(scenario, spawn):
    rank0, rank1, other, gpus = two_ranks(spawn)
    path = scenario(Scenario(gpus=gpus))
    app, nvml = live_app()

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.shown is not None, "a frame")
            await pilot.press("enter")  # GPU 0
            assert isinstance(app.screen, GpuScreen)
            await wait_until(pilot, lambda: procs(app).keys == [f"0:{rank0.pid}"], "the row")
            assert procs(app).check_action("signal", ("terminate",)) is True
            await pilot.press("T")
            assert isinstance(app.screen, ConfirmSignal)
            text = app.screen.query_one("#confirm-text").render().plain
            assert f"Terminate pid {rank0.pid} with SIGTERM?" in text
            for needle in (
                "Model    tp-llama",
                "VRAM     30.0 GiB on GPU 0",
                "GPUs     0",
                "--served-model-name tp-llama --rank 0",
                f"pid {rank1.pid} on GPU 1 (30.0 GiB)",
                "tp-llama also runs as 1 other process: killing one tensor-parallel rank stops "
                "the whole model.",
            ):
                assert needle in text, needle
            assert str(other.pid) not in text  # another model's process is not at stake
            assert app.screen.focused.id == "cancel"
            await pilot.press("enter")  # Cancel has the focus: nothing is sent
            assert isinstance(app.screen, GpuScreen)
            assert f"Pid {rank0.pid} not signalled" in notes(app)
            assert rank0.poll() is None

            await pilot.press("T")
            assert isinstance(app.screen, ConfirmSignal)
            await pilot.press("y")
            await wait_until(pilot, lambda: rank0.poll() is not None, "the child to exit")
            assert rank0.returncode == -signal.SIGTERM
            await wait_until(pilot, lambda: "SIGTERM pid" in status(app), "the status line")
            assert f"SIGTERM pid {rank0.pid}: sent" in status(app)
            assert (
                f"SIGTERM sent to pid {rank0.pid}; its row goes when NVML stops reporting it."
                in notes(app)
            )
            # NVML (the scenario) still reports the pid: the row stays, now without a process.
            seen = app.frames_received
            await wait_until(pilot, lambda: app.frames_received >= seen + 2, "two more frames")
            assert procs(app).keys == [f"0:{rank0.pid}"]
            Scenario(gpus=(replace(gpus[0], processes=()), gpus[1])).write(path)
            await wait_until(pilot, lambda: procs(app).keys == [], "the row to go")
            assert rank1.poll() is None and other.poll() is None

    try:
        run(go())
    finally:
        nvml.close()


def test_kill_a_rank_from_the_model_drill_down_with_the_button(scenario, spawn):
    rank0, rank1, other, gpus = two_ranks(spawn)
    scenario(Scenario(gpus=gpus))
    app, nvml = live_app()

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.shown is not None and app.shown.models, "models")
            await pilot.press("tab")  # the models
            models = app.screen.query_one("#models", FrameTable)
            await wait_until(pilot, lambda: "tp-llama" in models.keys, "the model row")
            models.move_cursor(models.keys.index("tp-llama"))
            await pilot.press("enter")
            assert isinstance(app.screen, ModelScreen)
            table = procs(app)
            await wait_until(pilot, lambda: len(table.keys) == 2, "both ranks")
            table.move_cursor(table.keys.index(f"1:{rank1.pid}"))
            await pilot.press("K")
            assert isinstance(app.screen, ConfirmSignal)
            text = app.screen.query_one("#confirm-text").render().plain
            assert f"Kill pid {rank1.pid} with SIGKILL?" in text
            assert f"pid {rank0.pid} on GPU 0 (30.0 GiB)" in text
            await pilot.press("tab", "enter")  # from Cancel to "Send SIGKILL"
            await wait_until(pilot, lambda: rank1.poll() is not None, "the child to exit")
            assert rank1.returncode == -signal.SIGKILL
            assert rank0.poll() is None and other.poll() is None

    try:
        run(go())
    finally:
        nvml.close()


def test_interrupt_from_the_overview_process_list(scenario, spawn):
    _, _, other, gpus = two_ranks(spawn)
    scenario(Scenario(gpus=gpus))
    app, nvml = live_app()

    async def go():
        async with app.run_test(size=(120, 48)) as pilot:  # tall: the overview lists processes
            await wait_until(pilot, lambda: app.shown is not None, "a frame")
            table = procs(app)
            await wait_until(pilot, lambda: f"1:{other.pid}" in table.keys, "the rows")
            table.focus()
            table.move_cursor(table.keys.index(f"1:{other.pid}"))
            await pilot.press("I")
            assert isinstance(app.screen, ConfirmSignal)
            text = app.screen.query_one("#confirm-text").render().plain
            assert "Other processes" not in text  # small-qwen runs alone
            await pilot.press("y")
            await wait_until(pilot, lambda: other.poll() is not None, "the child to exit")
            assert other.returncode == -signal.SIGINT
            assert isinstance(app.screen, OverviewScreen)

    try:
        run(go())
    finally:
        nvml.close()


def test_readonly_has_no_actions(scenario, spawn):
    rank0, _, _, gpus = two_ranks(spawn)
    scenario(Scenario(gpus=gpus))
    app, nvml = live_app(Settings(interval=0.3, readonly=True))

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.shown is not None, "a frame")
            assert not app.may_act
            assert status(app).startswith(" vramtop  read-only ")
            await pilot.press("enter")
            await wait_until(pilot, lambda: procs(app).keys == [f"0:{rank0.pid}"], "the row")
            assert procs(app).check_action("signal", ("terminate",)) is False
            await pilot.press("T", "y", "K", "y", "I", "y")
            await pilot.pause()
            assert isinstance(app.screen, GpuScreen)
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            text = app.screen.text.plain
            for word in ("Terminate", "Kill", "Interrupt", "SIGTERM"):
                assert word not in text
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert not any("process" in t for t in titles), titles
        assert rank0.poll() is None

    try:
        run(go())
    finally:
        nvml.close()


def test_help_and_palette_list_the_signals_when_acting_is_allowed():
    app = make_app(ScriptedCollector([frame_at(STEPS)]))

    async def go():
        async with app.run_test(size=(100, 40)) as pilot:
            await wait_until(pilot, lambda: app.shown is not None, "a frame")
            assert app.may_act and " read-only" not in status(app)
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert {"Terminate process", "Kill process", "Interrupt process"} <= set(titles)
            await pilot.press("question_mark")
            text = app.screen.text.plain
            assert "Process rows (on this machine)" in text
            for key, what in (("T", "Terminate"), ("K", "Kill"), ("I", "Interrupt")):
                assert re.search(rf"^  {key} +{what} the process \(SIG", text, re.M), key

    run(go())


def test_replay_has_no_actions(recording):  # noqa: F811 (fixture)
    app = replay_app(recording)

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.shown is not None, "a frame")
            assert not app.may_act
            await pilot.press("enter")
            assert isinstance(app.screen, GpuScreen)
            await pilot.press("T", "K", "I")
            assert isinstance(app.screen, GpuScreen)
            assert not any("signal" in n.lower() for n in notes(app))
            titles = [c.title for c in app.get_system_commands(app.screen)]
            assert not any("process" in t for t in titles), titles
            await pilot.press("question_mark")
            assert "Terminate" not in app.screen.text.plain

    run(go())


def test_remote_process_is_refused_with_its_sentence():
    frame = frame_at(STEPS)
    proc = ProcessReading(4101, 0, 70 * GIB, model="llama-70b", started_at=1.0)
    gpus = (replace(frame.gpus[0], host="gpu-07", processes=(proc,)),)
    app = make_app(ScriptedCollector([replace(frame, gpus=gpus)]))

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.shown is not None, "a frame")
            await pilot.press("enter")
            assert isinstance(app.screen, GpuScreen)
            await pilot.press("T")
            assert isinstance(app.screen, GpuScreen)  # no confirmation: nothing to confirm
            assert notes(app)[-1] == (
                "Remote process, cannot be signalled from here: pid 4101 runs on gpu-07."
            )
            assert "SIGTERM pid 4101: not sent" in status(app)

    run(go())


def test_confirmation_shows_hostile_text_literally():
    from samples import HOSTILE

    frame = frame_at(STEPS, hostile=True)
    # pid 666's start time is one no live process has: were it confirmed, it would be refused.
    gpu0 = frame.gpus[0]
    proc = replace(gpu0.processes[0], started_at=1.0)
    frame = replace(frame, gpus=(replace(gpu0, processes=(proc,)), *frame.gpus[1:]))
    app = make_app(ScriptedCollector([frame]))
    literal = "[bold red]x[/] \\x1b[2J\\x1b]0;pwned\\x07"

    async def go():
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_until(pilot, lambda: app.shown is not None, "a frame")
            await pilot.press("enter")
            assert isinstance(app.screen, GpuScreen)
            await pilot.press("K")
            assert isinstance(app.screen, ConfirmSignal)
            body = app.screen.query_one("#confirm-text").render()
            text = body.plain
            assert f"User     {literal}" in text and f"Model    {literal}" in text
            assert f"Command  {literal}" in text and "\x1b" not in text
            # Only vramtop's own bold labels are styled: nothing from the command line.
            spans = stake_text(app.screen.stake, "kill").spans
            assert spans and all(span.style == "bold" for span in spans)
            assert HOSTILE not in text
            await pilot.press("escape")
            assert isinstance(app.screen, GpuScreen)

    run(go())


def test_recycled_pid_from_the_screen_is_refused(spawn):
    """What the user saw started an hour before the live process now holding the pid."""
    import psutil

    child = spawn("--served-model-name", "recycled")
    frame = frame_at(STEPS)
    born = psutil.Process(child.pid).create_time()
    proc = ProcessReading(child.pid, 0, GIB, model="recycled", started_at=born - 3600)
    frame = replace(frame, gpus=(replace(frame.gpus[0], processes=(proc,)), *frame.gpus[1:]))
    app = make_app(ScriptedCollector([frame]))

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.shown is not None, "a frame")
            await pilot.press("enter", "K")
            assert isinstance(app.screen, ConfirmSignal)
            await pilot.press("y")
            await wait_until(pilot, lambda: "SIGKILL pid" in status(app), "the outcome")
            assert f"SIGKILL pid {child.pid}: not sent" in status(app)
            assert notes(app)[-1].startswith(f"Pid {child.pid} now belongs to another process")
            assert child.poll() is None

    run(go())


def test_terminate_from_the_command_palette(scenario, spawn):
    rank0, _, _, gpus = two_ranks(spawn)
    scenario(Scenario(gpus=gpus))
    app, nvml = live_app()

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.shown is not None, "a frame")
            await pilot.press("enter")
            assert isinstance(app.screen, GpuScreen)
            await wait_until(pilot, lambda: procs(app).keys == [f"0:{rank0.pid}"], "the row")
            await pilot.press("ctrl+p")
            await pilot.press(*"Terminate process")
            await wait_until(pilot, lambda: palette_offers(app, "Terminate process"), "entry")
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmSignal), "confirm")
            await pilot.press("y")
            await wait_until(pilot, lambda: rank0.poll() is not None, "the child to exit")
            assert rank0.returncode == -signal.SIGTERM

    try:
        run(go())
    finally:
        nvml.close()


def palette_offers(app: VramtopApp, title: str) -> bool:
    from textual.command import CommandList

    lists = app.screen.query(CommandList)
    return bool(lists) and any(
        title in str(lists.first().get_option_at_index(i).prompt)
        for i in range(lists.first().option_count)
    )


def test_palette_entry_without_a_process_list_says_what_to_do():
    app = make_app(ScriptedCollector([frame_at(STEPS)]))

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:  # short: no process list
            await wait_until(pilot, lambda: app.shown is not None, "a frame")
            app.signal_selected("kill")()
            await pilot.pause()
            assert isinstance(app.screen, OverviewScreen)
            assert notes(app)[-1] == (
                "Select a process first: in a GPU or model drill-down, or the overview's "
                "process list (a tall terminal)"
            )

    run(go())
