"""A private tmux server (own socket, no user config) whose sessions run one program each.

The server runs in the foreground (``-D``) as our child, as tests/test_tui_e2e.py does: it cannot
outlive us unnoticed, and a daemonizing server dies with the sandbox's shell job. Each session
``exec``s its program through ``env``, so the pane's pid is the program's pid.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

WIDTH, HEIGHT = 200, 60


class Tmux:
    def __init__(self, socket: Path, log: Path) -> None:
        tmux = shutil.which("tmux")
        if tmux is None:
            raise RuntimeError("tmux is not on PATH: apt-get install tmux")
        self.base = [tmux, "-f", "/dev/null", "-S", str(socket)]
        with log.open("wb") as out:
            self.server = subprocess.Popen(
                [*self.base, "-D"], stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while not socket.exists():
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the tmux server did not start: {log.read_text()}")
            time.sleep(0.02)
        # Keep the server up between sessions, and a dead program's last screen readable.
        self.run("set-option", "-g", "exit-empty", "off")
        self.run("set-option", "-g", "remain-on-exit", "on")

    def run(self, *args: str, check: bool = True) -> str:
        out = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=30)
        if check and out.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path) -> int:
        """Starts ``argv`` with exactly ``env`` in a new WIDTHxHEIGHT session; its pid."""
        assignments = [f"{k}={v}" for k, v in env.items()]
        command = "exec env -i " + shlex.join([*assignments, *argv])
        self.run(
            "new-session", "-d", "-s", name, "-x", str(WIDTH), "-y", str(HEIGHT),
            "-c", str(cwd), command,
        )  # fmt: skip
        return int(self.run("list-panes", "-t", name, "-F", "#{pane_pid}").split()[0])

    def screen(self, name: str) -> str:
        return self.run("capture-pane", "-p", "-t", name, check=False)

    def alive(self, name: str) -> bool:
        out = self.run("list-panes", "-t", name, "-F", "#{pane_dead}", check=False)
        return out.strip() == "0"

    def kill(self, name: str) -> None:
        self.run("kill-session", "-t", name, check=False)

    def close(self) -> None:
        if self.server.poll() is None:
            self.run("kill-server", check=False)
            try:
                self.server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
