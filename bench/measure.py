"""Measuring other processes: CPU and RSS of a process tree over a window, one-shot runs
(wall, CPU and max RSS from wait4), and time from exec to the first complete frame in tmux."""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from term import Tmux

MIB = 2**20


class Tree:
    """A process and (``recursive``) its descendants. CPU of descendants that exit is kept."""

    def __init__(self, pid: int, recursive: bool = True) -> None:
        self.root = psutil.Process(pid)
        self.recursive = recursive
        self._last: dict[tuple[int, float], float] = {}
        self._gone = 0.0

    def sample(self) -> tuple[float, int]:
        """(CPU seconds so far, RSS bytes now) of the whole tree."""
        try:
            kids = self.root.children(recursive=True) if self.recursive else []
            procs = [self.root, *kids]
        except psutil.NoSuchProcess:
            procs = []
        seen: dict[tuple[int, float], float] = {}
        rss = 0
        for p in procs:
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    seen[(p.pid, p.create_time())] = t.user + t.system
                    rss += p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        self._gone += sum(cpu for key, cpu in self._last.items() if key not in seen)
        self._last = seen
        return self._gone + sum(seen.values()), rss


@dataclass
class Window:
    wall: float = 0.0
    cpu: float = 0.0
    peak: float = 0.0  # the busiest second, as % of one core
    rss: list[int] = field(default_factory=list)

    @property
    def percent(self) -> float:
        return 100.0 * self.cpu / self.wall if self.wall else 0.0


def watch(trees: Mapping[str, Tree], seconds: float, step: float = 1.0) -> dict[str, Window]:
    """Samples every tree each ``step`` for ``seconds``: CPU % of one core, peak second, RSS."""
    out = {name: Window() for name in trees}
    last = {name: tree.sample()[0] for name, tree in trees.items()}
    start = prev = time.monotonic()
    tick = 1
    while True:
        time.sleep(max(0.0, start + tick * step - time.monotonic()))
        now = time.monotonic()
        for name, tree in trees.items():
            cpu, rss = tree.sample()
            w = out[name]
            w.cpu += cpu - last[name]
            w.peak = max(w.peak, 100.0 * (cpu - last[name]) / (now - prev))
            w.rss.append(rss)
            last[name] = cpu
        for w in out.values():
            w.wall += now - prev
        prev = now
        if now - start >= seconds - 1e-3:
            return out
        tick += 1


@dataclass(frozen=True)
class OnceResult:
    wall: float
    cpu: float
    max_rss: int
    ok: bool
    output: str


# wait4's max RSS of a child forked from this (large) Python process would start at our own RSS:
# Linux carries the high-water mark across exec. A tiny C parent forks the program instead.
TIMER_C = r"""
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct timespec a, b;
    struct rusage ru;
    int status = 0;
    if (argc < 3) return 2;
    clock_gettime(CLOCK_MONOTONIC, &a);
    pid_t pid = fork();
    if (pid == 0) { execvp(argv[2], argv + 2); _exit(127); }
    if (pid < 0 || wait4(pid, &status, 0, &ru) < 0) return 2;
    clock_gettime(CLOCK_MONOTONIC, &b);
    FILE *out = fopen(argv[1], "w");
    if (!out) return 2;
    fprintf(out, "%.6f %.6f %ld %d\n",
            (double)(b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9,
            ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
                + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6,
            ru.ru_maxrss, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
    return fclose(out) != 0;
}
"""


def compile_c(source: str, binary: Path) -> Path:
    binary.parent.mkdir(parents=True, exist_ok=True)
    src = binary.with_suffix(".c")
    src.write_text(source)
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(binary), str(src)], check=True)
    return binary


def run_once(
    timer: Path, argv: Sequence[str], env: Mapping[str, str]
) -> tuple[float, float, int, int, str]:
    """(wall s, CPU s, max RSS bytes, exit code, output) of one run, from wait4's rusage."""
    with tempfile.TemporaryDirectory() as tmp, tempfile.TemporaryFile() as out:
        stats = Path(tmp) / "rusage"
        subprocess.run(
            [str(timer), str(stats), *argv], env=dict(env), stdin=subprocess.DEVNULL,
            stdout=out, stderr=out, check=False,
        )  # fmt: skip
        out.seek(0)
        text = out.read().decode(errors="replace")
        wall, cpu, rss_kib, code = stats.read_text().split()
    return float(wall), float(cpu), int(rss_kib) * 1024, int(code), text


def once(
    timer: Path, argv: Sequence[str], env: Mapping[str, str], reps: int, ok: Callable[[str], bool]
) -> OnceResult:
    """Median of ``reps`` runs after one discarded warm-up run (page cache, .pyc files)."""
    return once_each({"": argv}, timer, env, reps, ok)[""]


def once_each(
    argvs: Mapping[str, Sequence[str]],
    timer: Path,
    env: Mapping[str, str],
    reps: int,
    ok: Callable[[str], bool],
) -> dict[str, OnceResult]:
    """``once`` for several commands, run in turn (one of each per round): a drift in the
    machine's speed during the runs reaches every command alike, not the last ones."""
    runs: dict[str, list[tuple[float, float, int, int, str]]] = {label: [] for label in argvs}
    for _ in range(reps + 1):  # the first round is the warm-up, discarded
        for label, argv in argvs.items():
            runs[label].append(run_once(timer, argv, env))
    out = {}
    for label, rs in runs.items():
        rs = rs[1:]
        out[label] = OnceResult(
            wall=statistics.median(r[0] for r in rs),
            cpu=statistics.median(r[1] for r in rs),
            max_rss=int(statistics.median(r[2] for r in rs)),
            ok=all(code == 0 and ok(text) for _, _, _, code, text in rs),
            output=rs[-1][4],
        )
    return out


def first_frame(
    tmux: Tmux,
    name: str,
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    ready: Callable[[str], bool],
    timeout: float = 30.0,
) -> tuple[float | None, str]:
    """Seconds from starting ``argv`` in a fresh session until ``ready(screen)``; the screen.

    The pane is polled every 20 ms (a tmux client each time: the figure is good to ~±20 ms).
    """
    start = time.perf_counter()
    pid = tmux.start(name, argv, env, cwd)
    deadline = start + timeout
    try:
        while True:
            screen = tmux.screen(name)
            if ready(screen):
                return time.perf_counter() - start, screen
            if time.perf_counter() > deadline or not tmux.alive(name):
                return None, screen
            time.sleep(0.02)
    finally:
        tmux.kill(name)
        wait_gone(pid)


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    try:
        psutil.Process(pid).wait(timeout=timeout)
    except psutil.NoSuchProcess:
        pass
    except psutil.TimeoutExpired:
        os.kill(pid, 9)
