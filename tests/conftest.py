"""Shared fixtures: the fake NVML library, scenarios and real child processes."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakenvml import build, fake_env

from vramtop.demo.scenario import Scenario

REPO = Path(__file__).resolve().parent.parent
# The real Prometheus, Alertmanager and node_exporter, started once per session.
pytest_plugins = ["promstack"]

# pytest-xdist's workers run with COLUMNS=80 and LINES=24, which Textual prefers to a terminal's
# real size: the programs the tests start in a 160x48 tmux pane would draw at 80x24.
for _size in ("COLUMNS", "LINES"):
    os.environ.pop(_size, None)


@pytest.fixture(scope="session")
def fake_lib() -> Path:
    return build()


@pytest.fixture(scope="session")
def loaded_fake(fake_lib: Path) -> Path:
    """Loads the fake into this process under its soname, so the real pynvml's
    ``CDLL("libnvidia-ml.so.1")`` finds it instead of searching for a driver."""
    ctypes.CDLL(str(fake_lib), mode=ctypes.RTLD_GLOBAL)
    return fake_lib


@pytest.fixture
def scenario(tmp_path: Path, loaded_fake: Path, monkeypatch: pytest.MonkeyPatch):
    """``scenario(Scenario(...))`` writes it and points the in-process fake at it."""
    path = tmp_path / "scenario.toml"

    def use(s: Scenario) -> Path:
        s.write(path)
        monkeypatch.setenv("FAKE_NVML_SCENARIO", str(path))
        return path

    return use


def wait_for_exec(child: subprocess.Popen, args: tuple[str, ...] | list[str]) -> None:
    """Until exec() completes, a fresh child still shows its parent's command line."""
    import time

    import psutil

    deadline = time.monotonic() + 10
    while True:
        try:
            argv = psutil.Process(child.pid).cmdline()
        except psutil.Error:
            argv = []
        if argv[-len(args) :] == list(args) if args else "-c" in argv:
            return
        assert time.monotonic() < deadline, f"child {child.pid} never showed {args}"
        time.sleep(0.005)


@pytest.fixture
def spawn() -> Iterator:
    """``spawn(*args)`` starts a real sleeping child whose command line is ``args``."""
    children: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", *args])
        children.append(child)
        wait_for_exec(child, args)
        return child

    yield start
    for child in children:
        child.kill()
        child.wait()


@pytest.fixture
def run_vramtop(fake_lib: Path, tmp_path: Path):
    """Runs the real ``vramtop`` in a subprocess against the fake NVML and a scenario."""

    def run(*args: str, scenario: Scenario | None = None, env: dict | None = None, stdout=None):
        path = None
        if scenario is not None:
            path = tmp_path / "cli-scenario.toml"
            scenario.write(path)
        base = {k: v for k, v in os.environ.items() if not k.startswith("VRAMTOP_")}
        base.pop("CUDA_VISIBLE_DEVICES", None)
        base["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
        full = fake_env(fake_lib, path, base)
        full.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "vramtop", *args],
            stdout=subprocess.PIPE if stdout is None else stdout,
            stderr=subprocess.PIPE,
            text=True,
            env=full,
            timeout=60,
            cwd=tmp_path,
        )

    return run
