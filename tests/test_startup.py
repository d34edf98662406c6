"""Start-up stays light: ``--version`` and ``--help`` import nothing but argparse and vramtop's
tiny modules, a local ``--once`` imports no HTTP client, and the host CPU figure of a first poll
measures a real window without a fixed sleep. Import sets, never timings (those are in bench/)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import namedtuple
from pathlib import Path

import psutil
import pytest

from vramtop import __version__
from vramtop.demo.scenario import Gpu, Process, Scenario
from vramtop.sources import cpu_window, host

HEAVY = (
    "textual",
    "rich",
    "httpx",
    "h11",
    "anyio",
    "prometheus_client",
    "prometheus_api_client",
    "requests",
)
SETTINGS = ("vramtop.config", "vramtop.model", "vramtop.attribution", "tomllib")


def imported(stderr: str) -> set[str]:
    """The modules a ``python -X importtime`` child imported, from its stderr."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    names.discard("package")  # the header line: "self [us] | cumulative | imported package"
    return names


def tops(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VRAMTOP_", "PYTHON"))}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    return env


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_import_only_argparse(flag: str, tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "vramtop", flag],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    if flag == "--version":
        assert out.stdout == f"vramtop {__version__}\n"
    else:
        assert out.stdout.startswith("usage: vramtop ") and "--serve-metrics" in out.stdout
        assert "default port 19400" in out.stdout
    names = imported(out.stderr)
    assert {"argparse", "vramtop.cli.flags", "vramtop.choices"} <= names  # the parse is seen
    assert not tops(names) & {*HEAVY, "psutil", "pynvml"}, sorted(names)
    assert not names & set(SETTINGS), sorted(names)
    ours = {n for n in names if n.startswith("vramtop")}
    assert ours == {
        "vramtop",
        "vramtop.choices",
        "vramtop.cli",
        "vramtop.cli.flags",
        "vramtop.entry",
    }


def test_local_once_imports_no_http_client(run_vramtop, tmp_path: Path) -> None:
    # The real CLI on the fake 2-GPU host, no remote flag: NVML and /proc, nothing of HTTP and
    # no psutil (its import was a sixth of the one-shot's time; /proc says the same here).
    gpus = tuple(Gpu(processes=(Process(os.getpid(), 2**30),)) for _ in range(2))
    out = run_vramtop("--once", scenario=Scenario(gpus=gpus), env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("NVIDIA H100") == 2, out.stdout
    names = imported(out.stderr)
    assert {
        "pynvml",
        "vramtop.sources.procfs",
        "vramtop.sources.nvml",
        "vramtop.export.text",
    } <= names
    assert "psutil" not in names
    assert not tops(names) & set(HEAVY), sorted(n for n in names if tops({n}) & set(HEAVY))


# -- the host CPU window --------------------------------------------------------------------

Times = namedtuple("Times", "user nice system idle iowait irq softirq steal guest guest_nice")


def test_busy_percent_counts_as_psutil_does() -> None:
    before = Times(100, 10, 50, 800, 20, 0, 5, 0, 7, 1)
    # +30 user (of which 6 guest), +10 system, +50 idle, +10 iowait: busy 40 of 100.
    after = Times(130, 10, 60, 850, 30, 0, 5, 0, 13, 1)
    assert cpu_window.busy_percent(before, after) == 40.0
    assert cpu_window.busy_percent(before, before) == 0.0  # no time passed
    # A counter that went backwards (a CPU taken offline) counts as no time, not negative.
    assert cpu_window.busy_percent(after._replace(user=120, idle=900), after) == 100.0


def test_first_poll_measures_the_window_opened_in_another_thread(monkeypatch) -> None:
    # psutil.cpu_percent(None) keeps its last snapshot per thread: opened on the command line's
    # thread and read on the host worker's, it measured nothing and said 0.0 %.
    slept: list[float] = []
    real_sleep = time.sleep
    worker: threading.Thread | None = None

    def sleep(seconds: float) -> None:  # time.sleep is global: other threads keep sleeping
        if threading.current_thread() is worker:
            slept.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(host.time, "sleep", sleep)
    monkeypatch.setattr(cpu_window, "_early", None)
    cpu_window.start_early()
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:  # this process keeps one CPU busy for the window
        pass
    source = host.HostSource()
    assert cpu_window._early is None  # the source took the window over
    readings = []
    worker = threading.Thread(target=lambda: readings.append(source.poll()))
    worker.start()
    worker.join()
    assert slept == []  # the window was long enough: no sleep
    assert readings[0].cpu_percent > 0.0
    assert readings[0].cpu_count == psutil.cpu_count()


def test_a_source_polled_at_once_still_waits_out_the_minimum_window(monkeypatch) -> None:
    slept: list[float] = []
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:  # time.sleep is global: other threads keep sleeping
        if threading.current_thread() is threading.main_thread():
            slept.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(host.time, "sleep", sleep)
    monkeypatch.setattr(cpu_window, "_early", None)
    source = host.HostSource()
    source.poll()
    assert len(slept) == 1 and 0 < slept[0] <= host.MIN_CPU_WINDOW
    source.poll()  # later polls measure since the previous one, however short
    assert len(slept) == 1


def test_remote_sources_import_httpx_at_their_first_request_not_when_built() -> None:
    # Built (settings checked) before the screen; httpx (~80 ms) on the source's own thread.
    script = """
import sys
from vramtop.config import load
from vramtop.wiring import build_collector
env = {"XDG_CONFIG_HOME": "/nonexistent"}
settings = load(env=env, flags={"prometheus_url": "http://127.0.0.1:9", "timeout": 2.0})
collector = build_collector(settings, env)
assert "httpx" not in sys.modules, "built"
frame = collector.collect()
assert "httpx" in sys.modules
print(frame.source("prometheus").state, frame.source("prometheus").detail)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    state, detail = out.stdout.split(" ", 1)
    assert state == "error" and "Prometheus at http://127.0.0.1:9 is unreachable" in detail


def test_the_live_view_starts_without_psutil() -> None:
    # /proc answers on Linux; psutil (~0.9 MiB of the live view) waits for a signal or a
    # machine without /proc.
    script = "import sys, vramtop.tui.app, vramtop.tui.factory; print('psutil' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


# Screens the live view imports only when one opens (their modules, widgets and Textual's
# TextArea and DataTable are ~1 MiB of resident memory a view showing the overview never uses).
LAZY_SCREENS = (
    "vramtop.tui.screens.gpu",
    "vramtop.tui.screens.model",
    "vramtop.tui.screens.drill",
    "vramtop.tui.screens.host",
    "vramtop.tui.screens.hosts",
    "vramtop.tui.screens.help",
    "vramtop.tui.screens.confirm",
    "vramtop.tui.screens.silence",
    "vramtop.tui.screens.silences",
    "vramtop.tui.silence_target",
    "vramtop.tui.widgets.chart",
    "textual.widgets._text_area",
    "textual.widgets._data_table",
)


def test_the_live_view_imports_a_screen_when_it_opens() -> None:
    script = f"""
import asyncio, sys
from test_tui_support import STEPS, ScriptedCollector, frame_at, make_app, wait_until
lazy = {LAZY_SCREENS!r}
app = make_app(ScriptedCollector([frame_at(STEPS)]))

async def go():
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.frames_received >= 1, "a frame")
        await pilot.pause()
        print(type(app.screen).__name__, [m for m in lazy if m in sys.modules])
        await pilot.press("enter")  # the GPU under the cursor
        await wait_until(pilot, lambda: type(app.screen).__name__ == "GpuScreen", "its screen")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: type(app.screen).__name__ == "HelpScreen", "the help")
        print(type(app.screen).__name__, [m for m in lazy if m in sys.modules])

asyncio.run(go())
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent)}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert out.returncode == 0, out.stderr[-3000:]
    first, opened = out.stdout.strip().splitlines()
    assert first == "OverviewScreen []"
    name, _, loaded = opened.partition(" ")
    assert name == "HelpScreen"
    for module in ("gpu", "drill", "help"):
        assert f"vramtop.tui.screens.{module}" in loaded, loaded
