"""The real ``vramtop`` in a real terminal (tmux): the fake NVML driver, a real child process
serving a model, keys sent with send-keys and the screen read back with capture-pane."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fakenvml import fake_env

from vramtop.demo.scenario import Gpu, Process, Scenario

GIB = 2**30
ESCAPE_GAP_S = 0.5
# The app's key bar, drawn by the app and not by the first paint before it: keys are sent once
# it is there (keys typed during the first paint wait for the app, which may then take them
# before its first frame is drawn).
APP = "⏎ Open"


class Tmux:
    """One private tmux server (its own socket) running one command in a 160x48 window.

    The server runs in the foreground (``-D``) as our child: a daemonizing server needs
    /dev/null to be a character device, which a test run as root cannot always count on.
    """

    def __init__(self, socket: Path, env: dict[str, str], cwd: Path) -> None:
        tmux = shutil.which("tmux")
        assert tmux, "tmux is needed for the end-to-end test (apt-get install tmux)"
        self.base = [tmux, "-S", str(socket)]
        self.env = env
        self.cwd = cwd
        self.escape_sent = -ESCAPE_GAP_S
        with open(cwd / "tmux-server.log", "wb") as log:
            self.server = subprocess.Popen(
                [tmux, "-D", "-S", str(socket)],
                env=env,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while not socket.exists():
            assert self.server.poll() is None, (cwd / "tmux-server.log").read_text()
            assert time.monotonic() < deadline, "the tmux server did not start"
            time.sleep(0.02)

    def tmux(self, *args: str) -> str:
        out = subprocess.run(
            [*self.base, *args], env=self.env, capture_output=True, text=True, timeout=30
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    def start(self, argv: list[str]) -> None:
        command = " ".join(shlex.quote(a) for a in argv)
        shell = f"{command}; echo VRAMTOP-EXITED rc=$?; sleep 60"
        self.tmux(
            "new-session", "-d", "-s", "e2e", "-x", "160", "-y", "48", "-c", str(self.cwd), shell
        )

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "e2e")

    def keys(self, *keys: str) -> None:
        # A key sent just after ESC reads as alt+key (Textual waits for an escape sequence),
        # so whatever follows an ESC waits until the app has taken the ESC alone.
        time.sleep(max(0.0, self.escape_sent + ESCAPE_GAP_S - time.monotonic()))
        self.tmux("send-keys", "-t", "e2e", *keys)
        if keys[-1] == "Escape":
            self.escape_sent = time.monotonic()

    def wait_for(self, check: Callable[[str], bool], what: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if check(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {what}; the screen was:\n{text}")
            time.sleep(0.1)

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], env=self.env, capture_output=True, timeout=30)
        try:
            self.server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Tmux]]:
    started: list[Tmux] = []

    def make(env: dict[str, str]) -> Tmux:
        t = Tmux(tmp_path / "tmux.sock", env, tmp_path)
        started.append(t)
        return t

    yield make
    for t in started:
        t.kill()


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VRAMTOP_", "TMUX"))}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env.pop("NO_COLOR", None)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env["TERM"] = "xterm-256color"
    return env


def test_live_view_against_the_fake_driver(fake_lib, spawn, tmp_path, terminal):
    child = spawn("serve.py", "--model", "e2e-llama", "--port", "9000")
    scenario = Scenario(
        driver_version="550.54.15",
        gpus=(
            Gpu(
                uuid="GPU-e2e00000-1111",
                memory_used=40 * GIB,
                utilization_gpu=63,
                processes=(Process(child.pid, 20 * GIB),),
            ),
        ),
    )
    path = tmp_path / "scenario.toml"
    scenario.write(path)
    t = terminal(fake_env(fake_lib, path, base_env(tmp_path)))
    t.start([sys.executable, "-m", "vramtop", "--interval", "1"])

    # "nvml ok" is waited for too: on a loaded machine the first frame's host source can be late,
    # and its longer status line wraps the nvml one.
    overview = ("e2e-llama", "Models (1)", "GPUs (1)", "63%", "20.0G", "driver 550.54.15")
    text = t.wait_for(lambda s: all(n in s for n in (*overview, "nvml ok", APP)), "the overview")
    assert "nvml ok" in text and "DEMO" not in text

    t.keys("Enter")  # the GPU table has the focus
    gpu = ("GPU-e2e00000-1111", "GPU 0 processes (1)", str(child.pid), "e2e-llama")
    t.wait_for(lambda s: all(n in s for n in gpu), "the GPU drill-down")

    t.keys("Escape")
    t.wait_for(lambda s: "Models (1)" in s and "GPU-e2e00000-1111" not in s, "back")

    t.keys("Tab", "Enter")
    model = ("Model e2e-llama", "Processes (1)", "window", str(child.pid))
    t.wait_for(lambda s: all(n in s for n in model), "the model drill-down")

    t.keys("Escape")
    t.wait_for(lambda s: "Models (1)" in s and "Model e2e-llama" not in s, "back again")

    t.keys("q")
    t.wait_for(lambda s: "VRAMTOP-EXITED rc=0" in s, "a clean exit")


def test_live_demo(tmp_path, terminal):
    env = base_env(tmp_path)
    env["LD_LIBRARY_PATH"] = "/nonexistent"  # the demo needs no driver
    t = terminal(env)
    t.start([sys.executable, "-m", "vramtop", "--demo"])
    demo = ("llama-3.1-70b", "GPUs (4)", "DEMO", "demo-gpu-host", APP)
    t.wait_for(lambda s: all(n in s for n in demo), "the demo")
    t.keys("?")
    t.wait_for(lambda s: "vramtop keys" in s, "help")
    t.keys("Escape")
    t.wait_for(lambda s: "vramtop keys" not in s, "help closed")
    t.keys("q")
    t.wait_for(lambda s: "VRAMTOP-EXITED rc=0" in s, "a clean exit")


def test_unknown_theme_is_one_sentence_and_exit_2(run_vramtop):
    out = run_vramtop("--demo", "--theme", "no-such-theme")
    assert out.returncode == 2
    assert out.stderr.startswith("vramtop: --theme: unknown theme 'no-such-theme'")
    assert out.stderr.count("\n") == 1


def test_live_view_against_real_prometheus_and_the_fake_driver(
    fake_lib, spawn, tmp_path, terminal, prometheus
):
    from vramtop.demo.exporter import ModelLoad, SimulatedExporter

    child = spawn("vllm", "serve", "org/e2e", "--served-model-name", "e2e-served")
    exporter = SimulatedExporter(
        "vllm", [ModelLoad("e2e-served", 8.0, 0.5, 1.5, 3.0, 0.01, 61, ttft_p95=0.2)]
    )
    target = prometheus.add_target(exporter.start(), job="e2e-vllm")
    try:
        prometheus.wait_until_scraped(target, history_s=6)
        scenario = Scenario(gpus=(Gpu(uuid="GPU-e2e-prom", processes=(Process(child.pid, GIB),)),))
        path = tmp_path / "scenario.toml"
        scenario.write(path)
        t = terminal(fake_env(fake_lib, path, base_env(tmp_path)))
        t.start(
            [
                sys.executable,
                "-m",
                "vramtop",
                "--interval",
                "1",
                "--prometheus",
                prometheus.url,
                "--rate-window",
                "5s",
                "--instance",
                target.address,
            ]
        )
        row = ("e2e-served", "1.50s", "3.00s", target.address, "prometheus ok", APP)
        t.wait_for(lambda s: all(n in s for n in row), "the model row with its latency")
        t.keys("Tab", "Enter")
        t.wait_for(lambda s: "Model e2e-served" in s and "p95" in s, "the model drill-down")
        t.keys("Escape")
        # The overview again (a local rule's alert summary also says "Model e2e-served").
        t.wait_for(lambda s: "Models (1)" in s and "p50 500ms" not in s, "back")
        t.keys("q")
        t.wait_for(lambda s: "VRAMTOP-EXITED rc=0" in s, "a clean exit")
    finally:
        target.remove()
        exporter.stop()
