"""The fleet in the live view through Pilot: the Hosts screen (default with several hosts),
worst first, sort and filter, a host's scoped overview and drill-downs, a model's replicas,
a down host's reason, and 1000 hosts."""

from __future__ import annotations

from test_tui_support import (
    GIB,
    STEPS,
    T0,
    ScriptedCollector,
    frame_at,
    make_app,
    run,
    screen_text,
    wait_until,
)

from vramtop.model import (
    AlertReading,
    Frame,
    GpuReading,
    HostReading,
    InstanceFigures,
    ModelReading,
    SourceStatus,
    freeze,
)
from vramtop.tui.app import VramtopApp
from vramtop.tui.screens.gpu import GpuScreen
from vramtop.tui.screens.host import HostScreen
from vramtop.tui.screens.hosts import HostsScreen
from vramtop.tui.screens.model import ModelScreen
from vramtop.tui.screens.overview import OverviewScreen
from vramtop.tui.widgets.frame_table import FrameTable

NOW = T0 + STEPS


def gpu(host: str, index: int, used_gib: float, util: float) -> GpuReading:
    return GpuReading(
        index,
        f"GPU-{host}-{index}",
        "NVIDIA H100 80GB HBM3",
        memory_used_bytes=int(used_gib * GIB),
        memory_total_bytes=80 * GIB,
        utilization_percent=util,
        host=host,
    )


def fleet_frame(time: float = NOW) -> Frame:
    """Three hosts: gpu-a healthy, gpu-b slow (p95 past its target, an alert firing, VRAM
    near full), gpu-c down (its exporter refused the connection a minute ago)."""
    llama = ModelReading(
        "llama-70b",
        150 * GIB,
        latency_p95_seconds=0.6,
        instances=("gpu-a:8000", "gpu-b:8000"),
        by_instance=(
            InstanceFigures("gpu-a", 70 * GIB, 0.05, 2, 40.0),
            InstanceFigures("gpu-b", 80 * GIB, 0.60, 70, 12.0),
        ),
    )
    qwen = ModelReading(
        "qwen-7b",
        30 * GIB,
        instances=("gpu-a:8001",),
        by_instance=(InstanceFigures("gpu-a", 30 * GIB, 0.02, 0, 90.0),),
    )
    return Frame(
        time=time,
        host=HostReading("laptop"),
        hosts=(
            HostReading("gpu-a:9100", cpu_percent=20.0, instance="gpu-a", up=True),
            HostReading("gpu-b:9100", instance="gpu-b", up=True),
            HostReading(
                "gpu-c:19400",
                instance="gpu-c",
                up=False,
                last_seen=time - 60,
                detail="connection refused by gpu-c:19400",
            ),
        ),
        gpus=(
            gpu("gpu-a", 0, 70, 40.0),
            gpu("gpu-a", 1, 30, 20.0),
            gpu("gpu-b", 0, 78, 95.0),
            gpu("gpu-b", 1, 77, 90.0),
        ),
        models=(llama, qwen),
        alerts=(
            AlertReading(
                "HighLatency",
                "critical",
                "firing",
                "llama-70b p95 above 100ms on gpu-b",
                freeze({"instance": "gpu-b:8000", "model": "llama-70b"}),
                time - 300,
            ),
        ),
        sources=(SourceStatus("prometheus", "ok"),),
    )


def big_fleet(hosts: int = 1000, step: int = 0) -> Frame:
    """``hosts`` hosts of 8 GPUs and one replica each; every 100th is down. ``step`` moves
    utilisation and latency on, as the next refresh would (bench/hosts_screen.py)."""
    gpus, replicas, readings = [], [], []
    for h in range(hosts):
        key = f"node-{h:04d}"
        down = h % 100 == 7
        readings.append(
            HostReading(key + ":9100", instance=key, up=not down, detail="timed out" * down)
        )
        if down:
            continue
        util = ((h * 13 + step) % 100 for _ in range(8))
        gpus.extend(gpu(key, i, 10 + (h * 7 + i) % 70, u) for i, u in enumerate(util))
        p95 = 0.02 + ((h + step) % 50) / 200
        replicas.append(InstanceFigures(key, 40 * GIB, p95, h % 30, 10.0))
    model = ModelReading("llama-70b", 40 * GIB * len(replicas), by_instance=tuple(replicas))
    return Frame(
        time=NOW + step,
        host=HostReading("laptop"),
        hosts=tuple(readings),
        gpus=tuple(gpus),
        models=(model,),
    )


def table(app: VramtopApp, selector: str) -> FrameTable:
    return app.screen.query_one(selector, FrameTable)


async def started(pilot, app: VramtopApp) -> None:
    await wait_until(pilot, lambda: app.frames_received >= 1, "the first frame")
    await wait_until(pilot, lambda: app.screen.view is not None, "the first draw")
    await pilot.pause()


def test_hosts_is_the_first_screen_of_a_fleet_worst_first():
    app = make_app(ScriptedCollector([fleet_frame()]))

    async def go():
        async with app.run_test(size=(160, 30)) as pilot:
            await started(pilot, app)
            assert isinstance(app.screen, HostsScreen)
            hosts = table(app, "#hosts")
            # Down first, then firing alerts (and p95 past its target), then the rest.
            assert hosts.keys == ["gpu-c", "gpu-b", "gpu-a"]
            p, view = app.palette, app.screen.view
            assert hosts.get_cell(0, "state").plain == "DOWN 1m"
            assert hosts.get_cell(0, "state").style == p.bad
            b = hosts.get_cell(1, "p95")
            assert b.plain.startswith("600ms llama-70b") and b.style == p.bad
            assert hosts.get_cell(2, "p95").style != p.bad  # 50ms: inside its target
            assert hosts.get_cell(1, "alerts").plain == "1"
            assert hosts.get_cell(1, "alerts").style == p.bad
            assert hosts.get_cell(1, "used").plain == "155.0/160G"  # past vram_critical_ratio
            assert hosts.get_cell(1, "used").style == p.bad
            assert hosts.get_cell(2, "util").plain == "30/40%"
            assert hosts.get_cell(2, "models").plain == "2 llama-70b, qwen-7b"
            assert hosts.get_cell(1, "queue").plain.startswith("70 llama-70b")
            assert view is not None and view.frame.hosts[2].instance == "gpu-c"
            text = screen_text(app)
            assert "Hosts (3)" in text and "1 down" in text
            # The selected down host's reason, under the list.
            assert "connection refused by gpu-c:19400" in text
            await pilot.press("j")  # gpu-b: up, no reason to give
            assert "connection refused" not in screen_text(app)

    run(go())


def test_a_single_host_opens_on_the_overview_and_h_opens_hosts():
    app = make_app(ScriptedCollector([frame_at(STEPS)]))

    async def go():
        async with app.run_test(size=(120, 30)) as pilot:
            await started(pilot, app)
            assert isinstance(app.screen, OverviewScreen) and app.fleet_start is False
            await pilot.press("h")
            assert isinstance(app.screen, HostsScreen)
            assert table(app, "#hosts").keys == ["gpu-box-01"]
            await pilot.press("enter")  # this machine, as a host: its own overview
            assert isinstance(app.screen, HostScreen) and app.screen.host == "gpu-box-01"
            assert table(app, "#gpus").keys == ["0", "1", "2", "3"]
            await pilot.press("escape", "escape")
            assert type(app.screen) is OverviewScreen
            await pilot.press("question_mark")
            assert "h                   Hosts" in app.screen.text.plain
            await pilot.press("escape", "ctrl+p")
            await wait_until(pilot, lambda: type(app.screen).__name__ == "CommandPalette")
            await pilot.press(*"Hosts", "enter")
            await wait_until(pilot, lambda: isinstance(app.screen, HostsScreen), "from the palette")

    run(go())


def test_sort_and_filter_hosts():
    app = make_app(ScriptedCollector([fleet_frame()]))

    async def go():
        async with app.run_test(size=(160, 30)) as pilot:
            await started(pilot, app)
            hosts = table(app, "#hosts")
            await pilot.click("#hosts", offset=(3, 1))  # the Host header
            assert hosts.sort_column == "host"
            assert hosts.keys == ["gpu-a", "gpu-b", "gpu-c"]
            await pilot.press("S")
            assert hosts.keys == ["gpu-c", "gpu-b", "gpu-a"]
            hosts.sort_by("p95")  # worst p95 first; a host that serves nothing last
            assert hosts.keys == ["gpu-b", "gpu-a", "gpu-c"]
            await pilot.press("slash", *"qwen", "enter")
            assert hosts.keys == ["gpu-a"]
            assert "Hosts (1 of 3)" in screen_text(app)
            await pilot.press("escape")
            assert len(hosts.keys) == 3 and isinstance(app.screen, HostsScreen)
            await pilot.press("slash", *"down", "enter")
            assert hosts.keys == ["gpu-c"]

    run(go())


def test_enter_opens_the_host_scoped_with_its_drill_downs():
    app = make_app(ScriptedCollector([fleet_frame()]))

    async def go():
        async with app.run_test(size=(160, 40)) as pilot:
            await started(pilot, app)
            await pilot.press("j", "enter")  # gpu-b
            assert isinstance(app.screen, HostScreen) and app.screen.host == "gpu-b"
            await pilot.pause()
            gpus = table(app, "#gpus")
            assert gpus.keys == ["0@gpu-b", "1@gpu-b"]  # only this host's GPUs
            models = table(app, "#models")
            assert models.keys == ["llama-70b"]
            p95 = models.get_cell(0, "p95")
            assert p95.plain == "600ms" and p95.style == app.palette.bad  # the replica's
            assert models.get_cell(0, "vram").plain == "80.0G"
            assert [k.split(":")[1] for k in table(app, "#alerts").keys] == ["HighLatency"]
            text = screen_text(app)
            assert "Host gpu-b" in text and " up " in text and "1 firing" in text
            # Its GPU 1: the GPU of this host, not gpu-a's GPU 1.
            await pilot.press("j", "enter")
            assert isinstance(app.screen, GpuScreen)
            assert (app.screen.index, app.screen.host) == (1, "gpu-b")
            text = screen_text(app)
            assert "GPU 1 on gpu-b" in text and "GPU-gpu-b-1" in text
            assert "no history" not in text  # kept by host and index: gpu-b's own GPU 1
            await pilot.press("escape")
            assert isinstance(app.screen, HostScreen)
            await pilot.press("tab", "enter")
            assert isinstance(app.screen, ModelScreen) and app.screen.host == "gpu-b"
            assert "charts fleet-wide" in screen_text(app)
            # Its replicas: Enter on this host's own goes back to it, not a second copy.
            depth = len(app.screen_stack)
            assert table(app, "#replicas").keys == ["gpu-b", "gpu-a"]
            await pilot.press("enter")
            assert isinstance(app.screen, HostScreen) and len(app.screen_stack) == depth - 1
            await pilot.press("escape")
            assert isinstance(app.screen, HostsScreen)

    run(go())


def test_a_down_host_shows_down_and_why():
    app = make_app(ScriptedCollector([fleet_frame()]))

    async def go():
        async with app.run_test(size=(160, 30)) as pilot:
            await started(pilot, app)
            await pilot.press("enter")  # gpu-c, down: first
            assert isinstance(app.screen, HostScreen) and app.screen.host == "gpu-c"
            await pilot.pause()
            text = screen_text(app)
            assert "Host gpu-c" in text and "DOWN" in text
            assert "connection refused by gpu-c:19400" in text
            assert table(app, "#gpus").keys == []

    run(go())


def test_model_drill_down_lists_replicas_and_enter_opens_the_host():
    app = make_app(ScriptedCollector([fleet_frame()]))

    async def go():
        async with app.run_test(size=(160, 40)) as pilot:
            await started(pilot, app)
            await pilot.press("escape")  # Hosts -> the overview of every host
            assert type(app.screen) is OverviewScreen
            gpus = table(app, "#gpus")
            assert len(gpus.keys) == 4 and "Host" in screen_text(app)  # whose GPU is whose
            assert gpus.region.height == 4 + 3  # every row shows (borders and header)
            await pilot.press("tab", "enter")
            assert isinstance(app.screen, ModelScreen)
            assert app.screen.model_name == "llama-70b" and app.screen.host is None
            await pilot.pause()
            replicas = table(app, "#replicas")
            assert replicas.keys == ["gpu-b", "gpu-a"]  # the slow replica first
            assert app.focused is replicas
            cell = replicas.get_cell(0, "p95")
            assert cell.plain == "600ms" and cell.style == app.palette.bad
            assert replicas.get_cell(0, "queue").style == app.palette.bad  # 70 > 50
            assert replicas.get_cell(1, "p95").style != app.palette.bad
            assert "Replicas (2)" in screen_text(app)
            await pilot.press("enter")  # one key: the slow replica's host
            assert isinstance(app.screen, HostScreen) and app.screen.host == "gpu-b"
            await pilot.press("escape")
            assert isinstance(app.screen, ModelScreen)
            await pilot.press("escape", "h")
            assert isinstance(app.screen, HostsScreen)
            await pilot.press("escape")  # Hosts was on top of the overview: back there
            assert type(app.screen) is OverviewScreen

    run(go())


def test_h_goes_back_to_hosts_from_a_drill_down():
    app = make_app(ScriptedCollector([fleet_frame()]))

    async def go():
        async with app.run_test(size=(160, 40)) as pilot:
            await started(pilot, app)
            await pilot.press("j", "enter", "enter")
            assert isinstance(app.screen, GpuScreen)
            await pilot.press("h")
            assert isinstance(app.screen, HostsScreen)
            assert sum(isinstance(s, HostsScreen) for s in app.screen_stack) == 1

    run(go())


def test_a_thousand_hosts_draw_and_keys_still_move():
    app = make_app(ScriptedCollector([big_fleet()]))

    async def go():
        async with app.run_test(size=(160, 40)) as pilot:
            await started(pilot, app)
            assert isinstance(app.screen, HostsScreen)
            hosts = table(app, "#hosts")
            assert hosts.row_count == 1000
            # Cells are made for the rows on screen only, not for a thousand.
            made = sum(1 for item in hosts._shown if item.cells is not None)
            assert 0 < made <= hosts.size.height
            assert [k for k in hosts.keys[:10] if k.endswith("07")] == hosts.keys[:10]  # down
            await pilot.press("j", "j", "j")
            assert hosts.cursor_row == 3
            await pilot.press("G")
            assert hosts.cursor_row == 999
            assert "Hosts (1000)" in screen_text(app)

    run(go())
