"""vramtop measured from inside (bench/inproc.py in a subprocess): NVML calls, collector cost
and PromQL queries per refresh, render cost per frame; and the recording's size and speed."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys

from plan import BENCH, STATIC_NVML, Bench
from report import table


def run_json(argv: list[str], env: dict[str, str], timeout: float) -> dict:
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def phase_inproc(b: Bench) -> None:
    py, script = sys.executable, str(BENCH / "inproc.py")
    env = b.host.env(dict(os.environ))
    local = run_json(
        [py, script, "local", "--prometheus", b.serving.url, "--refreshes", str(b.plan.refreshes)],
        env,
        300,
    )
    calls = local["nvml_calls"]
    names = [n for n in calls[0] if n != "*" and any(c.get(n) for c in calls)]
    later = calls[2:] or calls[1:]
    rows = []
    for n in [*names, "*"]:
        mean = statistics.mean(c.get(n, 0) for c in later)
        mark = " (static)" if n in STATIC_NVML else ""
        rows.append(
            [
                ("all calls" if n == "*" else n) + mark,
                calls[0].get(n, 0),
                calls[1].get(n, 0),
                f"{mean:g}",
            ]
        )
    static_later = sum(c.get(n, 0) for c in calls[1:] for n in STATIC_NVML)
    steady = statistics.mean(c.get("*", 0) for c in later)
    b.results["nvml.per_refresh"] = (calls[0].get("*", 0), steady, local["local"]["frame"]["gpus"])
    b.results["nvml.static_after_first"] = static_later
    b.results["nvml.handles_after_first"] = sum(
        c.get("nvmlDeviceGetHandleByIndex_v2", 0) for c in calls[1:]
    )
    b.report.section(
        "NVML calls per refresh (vramtop's collector, 8 GPUs, 64 processes)",
        table(["symbol", "refresh 1", "refresh 2", f"refreshes 3-{len(calls)}, mean"], rows),
        f"Static-field calls after the first refresh: {static_later}.",
    )
    rows = []
    for label in ("local", "local+prometheus"):
        r = local[label]
        rows.append(cost_row(label, r))
    b.results["collector.local"] = local["local"]["cpu_ms"]
    b.results["collector.local+prometheus"] = local["local+prometheus"]["cpu_ms"]
    b.report.section("Collector cost per refresh (this host)", table(COST_HEAD, rows), COST_NOTE)
    # The fleet for phase_scale: added now, so Prometheus discovers it while the render runs.
    b.serving.add_fleet(b.plan.models, b.plan.hosts)
    render = run_json(
        [sys.executable, script, "render", "--frames", str(b.plan.render_frames)],
        dict(os.environ),
        600,
    )
    b.results["render.cpu_ms"] = render["cpu_ms"]
    rows = [
        [
            f"8 GPUs, 64 processes, 20 models ({render['size']})",
            f"{render['cpu_ms']:.1f} ms",
            f"{render['cpu_p90_ms']:.1f} ms",
            f"{render['cpu_max_ms']:.1f} ms",
            f"{render['wall_ms']:.1f} ms",
            render["frames"],
        ]
    ]
    b.report.section(
        "TUI render cost per frame (App.run_test, headless)",
        table(["frames of", "CPU median", "CPU p90", "CPU max", "wall median", "frames"], rows),
        "A new Frame posted to the running app, then its handler, layout and compositing "
        "(headless: no escape sequences written). Frames from bench/record_size.py's host.",
    )


COST_HEAD = [
    "refresh",
    "PromQL queries",
    "HTTP requests",
    "first refresh",
    "CPU",
    "wall",
    "wall max",
    "frame: GPUs / procs / models / hosts / alerts",
]
COST_NOTE = (
    "Steady refreshes (median); 'first refresh' = HTTP requests of the first one, which also "
    "detects profiles. CPU = the whole vramtop process (all threads). PromQL queries listed as "
    "the set of values seen over the refreshes: one value means constant."
)


def cost_row(label: str, r: dict) -> list[object]:
    f = r["frame"]
    first = sum(r["first"]["requests"].values())
    return [
        label,
        "/".join(map(str, r["queries"])),
        "/".join(map(str, r["requests"])),
        first,
        f"{r['cpu_ms']:.1f} ms",
        f"{r['wall_ms']:.0f} ms",
        f"{r['wall_max_ms']:.0f} ms",
        f"{f['gpus']} / {f['processes']} / {f['models']} / {f['hosts']} / {f['alerts']}",
    ]


def phase_scale(b: Bench) -> None:
    b.serving.add_fleet(b.plan.models, b.plan.hosts)  # if phase_inproc did not
    b.serving.wait_fleet()
    result = run_json(
        [
            sys.executable,
            str(BENCH / "inproc.py"),
            "scale",
            "--prometheus",
            b.serving.url,
            "--models",
            ",".join(map(str, b.plan.models)),
            "--hosts",
            ",".join(map(str, b.plan.hosts)),
            "--refreshes",
            str(b.plan.refreshes),
        ],
        dict(os.environ),
        600,
    )
    rows = [[*cost_row(label, r), f"{r['rss_growth_mib']:.1f} MiB"] for label, r in result.items()]
    for label, r in result.items():
        b.results[f"scale.wall_max_ms.{label}"] = r["wall_max_ms"]
    for kind in ("models", "hosts"):  # per row: the fewest and the most a refresh sent
        b.results[f"scale.queries.{kind}"] = [
            [min(r["queries"]), max(r["queries"])] for label, r in result.items() if kind in label
        ]
    b.serving.remove_fleet()
    b.report.section(
        "Scaling against the local Prometheus (vLLM models; hosts with 4 models, 8 DCGM GPUs and "
        "their vramtop exporter's GPU and model-VRAM series)",
        table([*COST_HEAD, "RSS growth"], rows),
        COST_NOTE + " Each row selects its instances with --instance. RSS growth: the bench "
        "process's resident memory after the refreshes minus before building that row's "
        "sources (rows run in order: memory the allocator keeps from one row is not counted "
        "again in the next).",
    )


def phase_record(b: Bench, short: bool) -> None:
    if not short:
        out = subprocess.run(
            [sys.executable, str(BENCH / "record_size.py"), "--hours", "24"],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if out.returncode != 0:
            raise RuntimeError(f"record_size.py exited {out.returncode}:\n{out.stdout}{out.stderr}")
        b.report.section("Recording size and replay (bench/record_size.py --hours 24)", out.stdout)
        return
    from record_size import Host, row, seek_figures  # short: a 0.8 h recording, in-process

    path = str(b.work / "short.rec")
    host = Host()
    r = row("8-GPU host, 0.8 h", path, (host.frame(k) for k in range(1400)))
    seek = seek_figures(path)
    body = table(["recording", "frames", "bytes/frame", "MB/day at 2 s", "write CPU µs/frame"], [r])
    body += "\n\n" + table(["replay", ""], [[k, v] for k, v in seek.items()])
    b.report.section("Recording size and replay (short: 1400 frames)", body)


def phase_hosts(b: Bench) -> None:
    """The Hosts screen with a big fleet: frame cost and key latency (bench/hosts_screen.py)."""
    rows = []
    frames = str(max(5, b.plan.render_frames // 6))
    for hosts in (h for h in b.plan.hosts if h > 1):  # one host opens no Hosts screen
        r = run_json(
            [
                sys.executable,
                str(BENCH / "hosts_screen.py"),
                "--hosts",
                str(hosts),
                "--frames",
                frames,
            ],
            dict(os.environ),
            600,
        )
        b.results[f"hosts.key_wall_ms.{hosts}"] = r["key_wall_ms"]
        rows.append(
            [
                f"{hosts} hosts x 8 GPUs ({r['size']})",
                f"{r['frame_cpu_ms']:.0f} ms",
                f"{r['frame_cpu_max_ms']:.0f} ms",
                f"{r['host_rows_ms']:.1f} ms",
                f"{r['history_add_ms']:.1f} ms",
                f"{r['key_wall_ms']:.0f} ms",
                f"{r['key_wall_max_ms']:.0f} ms",
            ]
        )
    b.report.section(
        "Hosts screen, headless (python bench/hosts_screen.py --hosts N)",
        table(
            ["fleet", "frame CPU", "max", "of which host rows", "history", "key", "key max"],
            rows,
        ),
        "Every row changes every frame (the worst case). key: wall from a cursor key to its "
        "screen drawn while frames keep arriving; Pilot's own round trip is ~60 ms of it.",
    )
