"""vramtop and its peers measured from outside, as programs in tmux: the live view's CPU and RSS,
one-shot runs, time to the first complete frame, and a long run for RSS drift."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from host import MODELS
from measure import TIMER_C, Tree, Window, compile_c, first_frame, once, once_each, wait_gone, watch
from peers import Tool, version
from plan import PEERS_VENV, Bench
from report import mib, ms, pct, ratio, table
from term import HEIGHT, WIDTH

# -- what each tool's screen must show -------------------------------------------------------------


# A GPU's row: its name, or its memory out of 80 GiB as each tool writes it (vramtop "60.2/80G",
# nvitop's wide layout "60.20GiB / 80.00GiB" without the name, gpustat "61644 / 81920 MB").
_GPU_ROW = re.compile(r"H100|/ ?80(\.0+)? ?GiB|/80G\b|/ 81920 MB")


def gpu_lines(screen: str) -> int:
    return sum(bool(_GPU_ROW.search(line)) for line in screen.splitlines())


def pids_shown(screen: str, pids: list[int]) -> int:
    return sum(1 for pid in pids if re.search(rf"(?<!\d){pid}(?!\d)", screen))


def vramtop_ready(gpus: int, models: int, prometheus: bool) -> Callable[[str], bool]:
    """The overview with every GPU and model (and, with Prometheus, serving figures and the
    firing alerts) drawn."""

    def ready(screen: str) -> bool:
        drawn = f"GPUs ({gpus})" in screen and f"Models ({models})" in screen
        if prometheus:
            drawn = drawn and "firing)" in screen and "/s " in screen
        return drawn and gpu_lines(screen) >= min(gpus, 8)

    return ready


LOCAL_PANELS = "local panels"  # the row whose remote panels may still say loading


def demo_ready(screen: str) -> bool:
    return bool(re.search(r"GPUs \([1-9]", screen) and re.search(r"Models \([1-9]", screen))


def peer_ready(screen: str) -> bool:
    return gpu_lines(screen) >= 8


# -- phases ---------------------------------------------------------------------------------------


def phase_live(b: Bench, profile: bool) -> None:
    argv = [*b.vramtop, "--interval", "1", "--prometheus", b.serving.url]
    vramtop = Tool("vramtop", argv, None, version(b.vramtop))
    # The same view without Prometheus: NVML, psutil and the screen only.
    local = Tool("vramtop-local", [*b.vramtop, "--interval", "1"], None, vramtop.version)
    tools = [vramtop, local, *b.peers]
    pids: dict[str, int] = {}
    try:
        for t in tools:
            pids[t.name] = b.tmux.start(t.name, t.live, b.env, b.work)
        time.sleep(b.plan.warmup)
        trees = {name: Tree(pid) for name, pid in pids.items()}
        context = {
            "(tmux server)": Tree(b.tmux.server.pid, recursive=False),
            "(prometheus)": Tree(b.serving.prometheus.pid or 0),
            "(this script: exporters)": Tree(os.getpid(), recursive=False),
        }
        windows = [watch({**trees, **context}, b.plan.window) for _ in range(b.plan.windows)]
        screens = {name: b.tmux.screen(name) for name in pids}
        if profile:
            profile_live(b, pids["vramtop"])
        paused = paused_window(b, {n: t for n, t in trees.items() if n.startswith("vramtop")})
    finally:
        for name, pid in pids.items():
            b.tmux.kill(name)
            wait_gone(pid)
    sleepers = [pid for _, _, pid in b.host.placement]
    for name, screen in screens.items():
        (b.out / f"pane-{name}.txt").write_text(screen)
    rows = []
    base = statistics.mean(w["vramtop"].percent for w in windows)
    versions = {t.name: t.version for t in tools}
    for name in [*pids, *context]:
        ws = [w[name] for w in windows]
        mean = statistics.mean(w.percent for w in ws)
        rss_end = ws[-1].rss[-1] if ws[-1].rss else None
        screen = screens.get(name, "")
        shows = f"{gpu_lines(screen)} / {pids_shown(screen, sleepers)}" if name in pids else ""
        rows.append(
            [
                name,
                versions.get(name, ""),
                shows,
                *(pct(w.percent) for w in ws),
                pct(max(w.peak for w in ws)),
                pct(paused[name].percent) if name in paused else "",
                mib(rss_end),
                mib(max(max(w.rss) for w in ws if w.rss)),
                ratio(base, mean) if name in pids and not name.startswith("vramtop") else "",
            ]
        )
        b.results[f"live.{name}.cpu"] = mean
        if name in paused:
            b.results[f"live.{name}.paused_cpu"] = paused[name].percent
        b.results[f"live.{name}.rss"] = rss_end
        b.results[f"live.{name}.gpus"] = gpu_lines(screen)
    head = [
        "tool",
        "version",
        "GPU rows / pids drawn",
        *(f"CPU, window {i + 1}" for i in range(len(windows))),
        "peak 1 s",
        "CPU paused",
        "RSS at end",
        "RSS max",
        "vramtop / tool",
    ]
    note = (
        f"All at once, each in its own {WIDTH}x{HEIGHT} tmux session, refreshing every 1 s "
        f"(btop: update_ms=1000; htop: -d 10), {b.plan.window:g} s windows after "
        f"{b.plan.warmup:g} s of warm-up. CPU = CPU seconds of the process tree / wall seconds, "
        "as % of one core. vramtop reads Prometheus too, vramtop-local only NVML and the host. "
        "'GPU rows': screen lines naming an H100 (8 GPUs exist); 'pids': "
        "how many of the 64 GPU processes' pids are on screen. Rows in () are the shared "
        "machinery, for context. 'CPU paused': one more window with vramtop's screen paused "
        "(p; the collection goes on), the others still running. Last screens: " + str(b.out)
    )
    b.report.section("Live view at 1 s (2 cores, all tools at once)", table(head, rows), note)


def paused_window(b: Bench, trees: dict[str, Tree]) -> dict[str, Window]:
    """One more window with these live views paused (their screen frozen), while every other
    tool keeps running: issue 14 wants a paused or unchanged screen under 0.3 % CPU."""
    for name in trees:
        b.tmux.run("send-keys", "-t", name, "p")
    deadline = time.monotonic() + 10
    while not all("PAUSED" in b.tmux.screen(n) for n in trees):
        if time.monotonic() > deadline:
            raise RuntimeError("vramtop did not show PAUSED after p")
        time.sleep(0.2)
    time.sleep(1.0)  # the repaint that says PAUSED is not part of the window
    return watch(trees, b.plan.window)


def profile_live(b: Bench, pid: int) -> None:
    """py-spy on the live vramtop for one more window: where its CPU goes, by function."""
    pyspy = PEERS_VENV / "bin" / "py-spy"
    raw = b.out / "vramtop-live.pyspy.txt"
    subprocess.run(
        [
            str(pyspy),
            "record",
            "-p",
            str(pid),
            "-d",
            str(int(b.plan.window)),
            "-r",
            "100",
            "--nonblocking",
            "--gil",  # only samples holding the GIL: where the Python CPU goes
            "--threads",
            "-f",
            "raw",
            "-o",
            str(raw),
        ],
        capture_output=True,
        timeout=b.plan.window + 60,
        check=False,
    )
    if not raw.exists():
        b.report.line("py-spy produced no profile")
        return
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    threads: dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        samples += n
        # "thread (123): vramtop-promql_4" -> "vramtop-promql_*": one row per pool
        thread = re.sub(r"_\d+$", "_*", re.sub(r"thread \(\d+\): ", "", frames[0]))
        threads[thread] = threads.get(thread, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames[1:]):
            total[f] = total.get(f, 0) + n
    if not samples:
        b.report.line("py-spy recorded no samples")
        return
    by_thread = sorted(threads.items(), key=lambda kv: -kv[1])
    rows = [[name, f"{n / samples * 100:.0f} %"] for name, n in by_thread]
    top = sorted(total.items(), key=lambda kv: -kv[1])[:30]
    rows2 = [
        [f[:110], f"{n / samples * 100:.0f} %", f"{own.get(f, 0) / samples * 100:.0f} %"]
        for f, n in top
    ]
    b.report.section(
        f"py-spy: live vramtop, {samples} samples at 100 Hz holding the GIL (Python CPU)",
        table(["thread", "share"], rows) + "\n\n" + table(["function", "inclusive", "own"], rows2),
        f"raw stacks: {raw}",
    )


def phase_once(b: Bench) -> None:
    runs = [
        ("vramtop --once", [*b.vramtop, "--once"]),
        ("vramtop --once --prometheus", [*b.vramtop, "--once", "--prometheus", b.serving.url]),
        *((f"{t.name} {' '.join(t.once[1:])}".strip(), t.once) for t in b.peers if t.once),
    ]
    timer = compile_c(TIMER_C, b.work / "bin" / "rusage")
    results = once_each(dict(runs), timer, b.env, b.plan.once_reps, lambda s: "H100" in s)
    nvitop = results.get("nvitop --once")
    rows = []
    for label, r in results.items():
        rows.append(
            [
                label,
                ms(r.wall),
                ms(r.cpu),
                mib(r.max_rss),
                "yes" if r.ok else "NO",
                ratio(r.wall, nvitop.wall) if nvitop else "–",
            ]
        )
        (b.out / f"once-{label.split()[0]}{'-prom' if 'prom' in label else ''}.txt").write_text(
            r.output
        )
    b.results["once"] = {k: v.wall for k, v in results.items()}
    head = ["command", "wall", "CPU", "max RSS", "drew GPUs", "wall / nvitop's"]
    note = (
        f"Each alone, median of {b.plan.once_reps} runs after one warm-up round, the commands "
        "in turn (one of each per round); output to a file."
    )
    b.report.section("One-shot frame", table(head, rows), note)
    startup(b, timer)


def startup(b: Bench, timer: Path) -> None:
    """``--version`` and ``--help``: the parser alone, before any mode imports its libraries."""
    checks = {
        "--version": lambda out: out.startswith("vramtop "),
        "--help": lambda out: out.startswith("usage: vramtop"),
    }
    rows = []
    for flag, ok in checks.items():
        r = once(timer, [*b.vramtop, flag], b.env, b.plan.startup_reps, ok)
        b.results[f"startup.{flag}"] = r.wall if r.ok else None
        rows.append(
            [f"vramtop {flag}", ms(r.wall), ms(r.cpu), mib(r.max_rss), "yes" if r.ok else "NO"]
        )
    b.report.section(
        "Start-up: --version and --help",
        table(["command", "wall", "CPU", "max RSS", "printed it"], rows),
        f"Median of {b.plan.startup_reps} runs after one warm-up run, each alone.",
    )


def phase_first(b: Bench) -> None:
    url = b.serving.url
    configs = [
        ("vramtop --demo", [*b.vramtop, "--demo", "--interval", "1"], demo_ready),
        (
            "vramtop (fake NVML)",
            [*b.vramtop, "--interval", "1"],
            vramtop_ready(8, len(MODELS), False),
        ),
        (
            f"vramtop (fake NVML + Prometheus), {LOCAL_PANELS}",
            [*b.vramtop, "--interval", "1", "--prometheus", url],
            vramtop_ready(8, len(MODELS), False),
        ),
        (
            "vramtop (fake NVML + Prometheus)",
            [*b.vramtop, "--interval", "1", "--prometheus", url],
            vramtop_ready(8, len(MODELS), True),
        ),
        *((f"{t.name} (fake NVML)", t.live, peer_ready) for t in b.peers if t.once),
    ]
    rows = []
    for i, (label, argv, ready) in enumerate(configs):
        times = []
        screen = ""
        for rep in range(b.plan.first_reps):
            seconds, screen = first_frame(b.tmux, f"first-{i}-{rep}", argv, b.env, b.work, ready)
            times.append(seconds)
        (b.out / f"first-{i}.txt").write_text(screen)
        good = [t for t in times if t is not None]
        median = statistics.median(good) if good else None
        b.results[f"first.{label}"] = median if len(good) == len(times) else None
        rows.append(
            [
                label,
                ms(median),
                ms(min(good) if good else None),
                ms(max(good) if good else None),
                f"{len(good)}/{len(times)}",
            ]
        )
    note = (
        "From starting the program in a fresh tmux session to the first capture-pane showing "
        "every GPU and model (vramtop: 'GPUs (8)', 'Models (20)', 8 H100 rows; with "
        f"Prometheus also Req/s figures and firing alerts, except in the '{LOCAL_PANELS}' row, "
        "where the remote panels may still say loading; peers: 8 H100 rows). Pane polled "
        "every 20 ms."
    )
    head = ["program", "median", "min", "max", "complete"]
    b.report.section("Time to the first complete frame", table(head, rows), note)


def phase_long(b: Bench) -> None:
    argv = [*b.vramtop, "--interval", "1", "--prometheus", b.serving.url]
    pid = b.tmux.start("long", argv, b.env, b.work)
    marks = (10, 60, 120, 300, b.plan.long_s)
    rss: dict[float, int] = {}
    try:
        tree = Tree(pid)
        start = time.monotonic()
        cpu0 = None
        samples = []
        while (elapsed := time.monotonic() - start) < b.plan.long_s:
            cpu, now_rss = tree.sample()
            if elapsed >= 10 and cpu0 is None:
                cpu0, t0 = cpu, time.monotonic()
            samples.append((elapsed, now_rss))
            for m in marks:
                if elapsed >= m and m not in rss:
                    rss[m] = now_rss
            time.sleep(5)
        cpu, end_rss = tree.sample()
        rss[b.plan.long_s] = end_rss
        screen = b.tmux.screen("long")
    finally:
        b.tmux.kill("long")
        wait_gone(pid)
    (b.out / "pane-long.txt").write_text(screen)
    cpu_pct = 100 * (cpu - (cpu0 or 0)) / (time.monotonic() - t0) if cpu0 is not None else None
    rows = [[f"{m:g} s", mib(v)] for m, v in sorted(rss.items())]
    rows.append(["max", mib(max(v for _, v in samples))])
    rows.append(["CPU after the first 10 s", pct(cpu_pct)])
    drawn = re.findall(r"(GPUs|Models|Processes) \((\d+)", screen)
    rows.append(["on screen at the end", ", ".join(f"{k} {n}" for k, n in drawn)])
    b.results["long.rss"] = (rss.get(10), end_rss, max(v for _, v in samples))
    # Growth per hour from 60 s on (the first minute fills caches and the history buffers).
    base = rss.get(60)
    if base is not None and b.plan.long_s > 60:
        b.results["long.growth_per_hour"] = (end_rss - base) * 3600 / (b.plan.long_s - 60)
        rows.append(["growth per hour after 60 s", mib(b.results["long.growth_per_hour"])])
    b.report.section(
        f"vramtop for {b.plan.long_s / 60:g} minutes at 1 s (fake NVML + Prometheus)",
        table(["after", "RSS"], rows),
    )
