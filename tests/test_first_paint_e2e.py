"""The live view's first paint in a real terminal (tmux): the overview drawn as plain text
before Textual is imported, then the app taking the same screen over.

Textual's import is held back by a gate (a sitecustomize on PYTHONPATH that waits for a file
before ``textual`` may be imported), so the test sees the first paint alone whatever the
machine's speed, then opens the gate and watches the hand-over."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from fakenvml import fake_env
from test_tui_e2e import APP, GIB, base_env, terminal  # noqa: F401 - the tmux fixture

from vramtop.demo.scenario import Gpu, Process, Scenario

GATE = '''
import importlib.util, os, sys, time

class _HoldTextual:
    """Holds the running of textual/__init__.py until the file FIRSTPAINT_GATE names exists.
    Only its execution waits: a finder that waited would hold the global import lock and stop
    every other thread's imports too."""

    def find_spec(self, name, path=None, target=None):
        gate = os.environ.get("FIRSTPAINT_GATE")
        if name != "textual" or not gate:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            while not os.path.exists(gate):
                time.sleep(0.02)
            run(module)

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _HoldTextual())
'''


def gated_env(fake_lib: Path, scenario: Path, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """The environment that holds Textual's import until the returned file exists."""
    hold = tmp_path / "hold"
    hold.mkdir()
    (hold / "sitecustomize.py").write_text(GATE)
    gate = tmp_path / "gate-open"
    env = fake_env(fake_lib, scenario, base_env(tmp_path))
    env["PYTHONPATH"] = str(hold)
    env["FIRSTPAINT_GATE"] = str(gate)
    return env, gate


def one_gpu(fake_lib: Path, tmp_path: Path, terminal):  # noqa: F811
    """A tmux terminal on a one-GPU fake host, Textual's import held: (terminal, gate)."""
    path = tmp_path / "scenario.toml"
    Scenario(gpus=(Gpu(uuid="GPU-fp-0"),)).write(path)
    env, gate = gated_env(fake_lib, path, tmp_path)
    return terminal(env), gate


def _lines(screen: str, word: str) -> list[str]:
    return [line.rstrip() for line in screen.splitlines() if word in line]


def test_first_paint_then_the_app_takes_over(fake_lib, spawn, tmp_path, terminal):  # noqa: F811
    child = spawn("serve.py", "--model", "e2e-llama", "--port", "9000")
    scenario = Scenario(
        driver_version="550.54.15",
        gpus=(
            Gpu(uuid="GPU-fp-0", memory_used=40 * GIB, processes=(Process(child.pid, 20 * GIB),)),
            Gpu(uuid="GPU-fp-1", memory_used=8 * GIB, utilization_gpu=63),
        ),
    )
    path = tmp_path / "scenario.toml"
    scenario.write(path)
    env, gate = gated_env(fake_lib, path, tmp_path)
    t = terminal(env)
    # The program starts once the pane's output is logged (pipe-pane), to read what it wrote.
    begin, log = tmp_path / "begin", tmp_path / "pane.log"
    program = shlex.join([sys.executable, "-m", "vramtop", "--interval", "1"])
    t.start(["sh", "-c", f"while [ ! -e {begin} ]; do sleep 0.02; done; exec {program}"])
    t.tmux("pipe-pane", "-t", "e2e", f"cat > {shlex.quote(str(log))}")
    begin.write_text("")

    # Textual cannot be imported yet: what is on screen is the first paint.
    painted = ("GPUs (2) · sort #▲", "Models (1) · sort VRAM▼", "e2e-llama", "driver 550.54.15")
    first = t.wait_for(lambda s: all(n in s for n in painted), "the first paint")
    assert APP not in first  # the app's key bar is not there yet
    assert len(_lines(first, "H100")) == 2
    assert "Processes (1) · sort VRAM▼" in first  # 48 rows: tall enough for processes
    assert "● host ok  ● nvml ok" in first and "Alerts" in first

    gate.write_text("")
    app = t.wait_for(lambda s: APP in s and "Models (1)" in s, "the app")
    # The same columns and rows: headers, the model row, the GPU rows up to the sparkline
    # (which grows as frames come).
    for word in ("#▲", "VRAM▼   "):
        assert _lines(app, word) == _lines(first, word), word
    assert _lines(app, "e2e-llama")[:1] == _lines(first, "e2e-llama")[:1]
    head = _lines(first, "#▲")[0]
    cut = head.index("History") if "History" in head else len(head)
    assert [x[:cut] for x in _lines(app, "H100")] == [x[:cut] for x in _lines(first, "H100")]

    t.keys("Enter")  # keys reach the app: the GPU table has the focus
    t.wait_for(lambda s: "GPU-fp-0" in s and "GPU 0 processes (1)" in s, "the GPU drill-down")
    t.keys("Escape")
    t.wait_for(lambda s: "Models (1)" in s and "GPU-fp-0" not in s, "back")
    t.keys("q")
    end = t.wait_for(lambda s: "VRAMTOP-EXITED rc=0" in s, "a clean exit")
    assert "GPUs (" not in end and "╭" not in end  # nothing of either screen is left
    # One switch to the alternate screen, the first paint's: the app's own would clear the
    # screen on xterm and VTE (a blank frame between the two paints). One switch back.
    written = log.read_bytes().decode("utf-8", "replace")
    assert written.count("\x1b[?1049h") == 1
    assert written.index("\x1b[?1049h") < written.index("GPUs (2)")
    assert written.count("\x1b[?1049l") == 1


def test_a_failed_start_after_the_first_paint_leaves_the_terminal_clean(
    fake_lib,
    tmp_path,
    terminal,  # noqa: F811
):
    t, gate = one_gpu(fake_lib, tmp_path, terminal)
    t.start([sys.executable, "-m", "vramtop", "--theme", "no-such-theme"])
    t.wait_for(lambda s: "GPUs (1) · sort #▲" in s, "the first paint")
    gate.write_text("")  # the theme is checked once Textual is imported: too late for the paint
    end = t.wait_for(lambda s: "VRAMTOP-EXITED rc=2" in s, "exit 2")
    assert "vramtop: --theme: unknown theme 'no-such-theme'" in end
    assert "GPUs (" not in end and "╭" not in end  # the main screen again, as it was


def test_ctrl_c_while_a_remote_source_hangs_at_the_first_paint_restores_the_terminal(
    fake_lib,
    tmp_path,
    terminal,  # noqa: F811
):
    # A server that takes the connection and never answers: the painter waits on it, the
    # command line waits (bounded) on the painter; Ctrl-C then must leave a clean terminal.
    import socket

    t, _ = one_gpu(fake_lib, tmp_path, terminal)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        t.start([sys.executable, "-m", "vramtop", "--prometheus", url, "--timeout", "20"])
        t.wait_for(lambda s: "GPUs (1) · sort #▲" in s and "loading" in s, "the first paint")
        t.keys("C-c")
        end = t.wait_for(lambda s: "VRAMTOP-EXITED rc=130" in s, "exit 130")
    assert "GPUs (" not in end and "╭" not in end  # the main screen again, as it was
