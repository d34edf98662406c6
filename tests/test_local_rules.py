"""Alerts without Prometheus: rules on Frame figures, pending -> firing -> resolved, in the live
collector over the fake NVML and a real scrape, through a recording, beside Prometheus."""

from __future__ import annotations

import json
from dataclasses import replace
from types import MappingProxyType

import pytest

from vramtop.cli import main
from vramtop.config import ConfigError, Settings, Targets, load
from vramtop.demo.exporter import GIB, ModelLoad, SimulatedExporter
from vramtop.demo.scenario import Gpu, Scenario
from vramtop.local_rules import (
    DEFAULT_RULES,
    LocalRule,
    LocalRules,
    RuleError,
    covered,
    merge,
    parse_rules,
)
from vramtop.model import AlertReading, Frame, GpuReading, HostReading, ModelReading
from vramtop.record import Recorder, Recording

T0 = 1_795_000_000.0
TARGETS = tuple(Targets.__dataclass_fields__)


def frame(t: float, queue: float | None, cpu: float | None = 10.0, name: str = "m") -> Frame:
    return Frame(
        time=T0 + t,
        host=HostReading(hostname="gpu-1", cpu_percent=cpu),
        models=(ModelReading(name, None, queue_length=queue),),
    )


def states(alerts) -> list[tuple[str, str, float | None, str]]:
    return [(a.name, a.state, a.active_since and a.active_since - T0, a.summary) for a in alerts]


def test_queue_backlog_goes_pending_then_fires_after_for_and_resolves():
    rules = LocalRules(DEFAULT_RULES, Targets())  # ModelQueueBacklog: > 50 for 2m
    backlog = "ModelQueueBacklog"
    seen = {t: states(rules.evaluate(frame(t, q))) for t, q in [(0, 10), (10, 60), (70, 61)]}
    assert seen[0] == []
    assert seen[10] == [(backlog, "pending", 10, "Model m has 60 requests queued (limit 50)")]
    assert seen[70] == [(backlog, "pending", 10, "Model m has 61 requests queued (limit 50)")]
    # Under `for` and then gone: the breach that comes back starts pending again.
    assert states(rules.evaluate(frame(100, 50))) == []  # 50 is not > 50
    assert states(rules.evaluate(frame(110, 70)))[0][1:3] == ("pending", 110)
    assert states(rules.evaluate(frame(229.9, 70)))[0][1:3] == ("pending", 110)
    assert states(rules.evaluate(frame(230, 70)))[0][1:3] == ("firing", 110)
    assert states(rules.evaluate(frame(400, 80)))[0][1:3] == ("firing", 110)
    assert states(rules.evaluate(frame(401, 3))) == []  # resolved


def test_a_missing_figure_is_not_true_and_never_zero():
    rule = LocalRule("QueueEmpty", "model.queue_length", "<", 1.0, 0.0)
    rules = LocalRules([rule], Targets())
    assert states(rules.evaluate(frame(0, None))) == []
    assert states(rules.evaluate(frame(1, 0))) == [
        ("QueueEmpty", "firing", 1, "model.queue_length is 0 (limit 1)")
    ]
    # A firing alert whose figure can no longer be read is resolved, as Prometheus does.
    assert states(rules.evaluate(frame(2, None))) == []


def test_every_default_rule_fires_on_its_figure():
    gpu = GpuReading(0, "GPU-a", "H100", memory_used_bytes=97, memory_total_bytes=100)
    m = ModelReading("m", None, latency_p95_seconds=1.5, error_ratio=0.02, queue_length=51)
    f = Frame(
        time=T0, host=HostReading(hostname="gpu-1", cpu_percent=90.0), gpus=(gpu,), models=(m,)
    )
    rules = LocalRules(DEFAULT_RULES, Targets())
    rules.evaluate(f)
    fired = rules.evaluate(replace(f, time=T0 + 300))
    assert {(a.name, a.state, a.severity, a.source) for a in fired} == {
        ("VRAMExhausted", "firing", "critical", "local"),
        ("HighErrorRate", "firing", "critical", "local"),
        ("HighCPUUsage", "firing", "warning", "local"),
        ("SlowAPIResponse", "firing", "warning", "local"),
        ("ModelQueueBacklog", "firing", "warning", "local"),
    }
    summaries = {a.name: a.summary for a in fired}
    assert summaries == {
        "VRAMExhausted": "VRAM of GPU 0 is 97% used (limit 95%)",
        "HighErrorRate": "2.00% of requests to m fail (limit 1.00%)",
        "HighCPUUsage": "CPU of gpu-1 is 90% busy (limit 80%)",
        "SlowAPIResponse": "p95 latency of m is 1.50 s (limit 1.00 s)",
        "ModelQueueBacklog": "Model m has 51 requests queued (limit 50)",
    }
    labels = {a.name: dict(a.labels) for a in fired}
    assert labels["VRAMExhausted"] == {"gpu": "0", "uuid": "GPU-a"}
    assert labels["HighCPUUsage"] == {"instance": "gpu-1"}
    assert labels["ModelQueueBacklog"] == {"model": "m"}
    # The targets move the rules: a higher queue limit silences the backlog.
    calm = LocalRules(DEFAULT_RULES, Targets(queue_length_warning=100.0)).evaluate(f)
    assert "ModelQueueBacklog" not in {a.name for a in calm}


def test_a_hostile_model_name_is_substituted_as_text():
    hostile = "[b]x[/b]{value}{0.__class__}"
    rules = LocalRules(DEFAULT_RULES, Targets())
    (a,) = rules.evaluate(frame(0, 60, name=hostile))
    assert a.summary == f"Model {hostile} has 60 requests queued (limit 50)"
    assert dict(a.labels) == {"model": hostile}


def test_config_rules_replace_extend_and_disable_defaults(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(
        '[[rules]]\nname = "ModelQueueBacklog"\nthreshold = 10\nfor = "30s"\n\n'
        '[[rules]]\nname = "HighCPUUsage"\nenabled = false\n\n'
        '[[rules]]\nname = "GpuHot"\nfigure = "gpu.temperature_c"\ncomparison = ">="\n'
        'threshold = 85\nfor = "1m"\nseverity = "critical"\nsummary = "GPU {gpu} at {value}"\n'
        'runbook_url = "https://wiki.example/gpu-hot"\n'
    )
    rules = {r.name: r for r in load({}, str(path)).rules}
    assert set(rules) == {
        "VRAMExhausted",
        "HighErrorRate",
        "SlowAPIResponse",
        "ModelQueueBacklog",
        "GpuHot",
    }
    assert rules["ModelQueueBacklog"] == replace(
        DEFAULT_RULES[-1], threshold=10.0, for_seconds=30.0
    )
    assert rules["GpuHot"] == LocalRule(
        "GpuHot",
        "gpu.temperature_c",
        ">=",
        85.0,
        60.0,
        "critical",
        "GPU {gpu} at {value}",
        "https://wiki.example/gpu-hot",
    )
    g = GpuReading(3, "GPU-h", "H100", temperature_c=85.0)
    (a,) = LocalRules([rules["GpuHot"]], Targets()).evaluate(
        Frame(time=T0, host=HostReading("h"), gpus=(g,))
    )
    assert (a.summary, a.state, a.runbook_url) == (
        "GPU 3 at 85 °C",
        "pending",
        "https://wiki.example/gpu-hot",
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"name": "X", "figure": "model.queue_length", "comparison": ">"},
            "rule 'X': field 'threshold' is missing (a new rule needs figure, comparison and "
            "threshold)",
        ),
        (
            {"name": "X", "figure": "model.qeue", "comparison": ">", "threshold": 1},
            "rule 'X': field 'figure' must be one of model.queue_length,",
        ),
        (
            {"name": "ModelQueueBacklog", "comparison": "=="},
            "rule 'ModelQueueBacklog': field 'comparison' must be one of >, >=, <, <=, got '=='",
        ),
        (
            {"name": "ModelQueueBacklog", "threshold": "queue_length"},
            "rule 'ModelQueueBacklog': field 'threshold' must be a number or a target name "
            "(api_p95_seconds,",
        ),
        (
            {"name": "ModelQueueBacklog", "for": "soon"},
            "rule 'ModelQueueBacklog': field 'for' must be a duration like \"2m\" or \"30s\", "
            "got 'soon'",
        ),
        (
            {"name": "ModelQueueBacklog", "summary": "{gpu} is full"},
            "rule 'ModelQueueBacklog': field 'summary' has an unknown placeholder '{gpu}' "
            "(known here: {model}, {instance}, {value}, {threshold})",
        ),
        (
            {"name": "ModelQueueBacklog", "summary": "{model.__class__}"},
            "rule 'ModelQueueBacklog': field 'summary' has an unknown placeholder",
        ),
        (
            {"name": "ModelQueueBacklog", "severity": "panic"},
            "rule 'ModelQueueBacklog': field 'severity' must be one of critical, warning, info",
        ),
        (
            {"name": "ModelQueueBacklog", "runbook_url": "javascript:alert(1)"},
            "rule 'ModelQueueBacklog': field 'runbook_url' must be an http:// or https:// URL",
        ),
        (
            {"name": "ModelQueueBacklog", "treshold": 3},
            "rule 'ModelQueueBacklog': unknown field 'treshold'",
        ),
        ({"name": "a b"}, "entry 1: field 'name' must be an alert name"),
    ],
)
def test_bad_rules_name_the_rule_and_field(entry, message):
    with pytest.raises(RuleError) as err:
        parse_rules([entry], TARGETS)
    assert str(err.value).startswith(message)


def test_a_bad_rule_in_the_config_file_exits_2_with_one_sentence(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text('[[rules]]\nname = "SlowAPIResponse"\nfor = -3\n')
    with pytest.raises(ConfigError):
        load({}, str(path))
    assert main(["--config", str(path), "--once"], env={"HOME": str(tmp_path)}) == 2
    err = capsys.readouterr().err
    assert err == (
        f"vramtop: {path}: key 'rules' rule 'SlowAPIResponse': field 'for' must be a duration "
        'like "2m" or "30s", got -3\n'
    )


def alert(name: str, source: str, **labels: str) -> AlertReading:
    return AlertReading(name, "warning", "firing", labels=MappingProxyType(labels), source=source)


def test_prometheus_alert_of_the_same_name_and_subject_wins():
    local_q = alert("ModelQueueBacklog", "local", model="yolo")
    local_gpu = alert("VRAMExhausted", "local", gpu="0", uuid="GPU-a")
    prom_q = alert("ModelQueueBacklog", "prometheus", model_name="yolo", instance="h:8000")
    prom_gpu = alert("VRAMExhausted", "alertmanager", gpu="3", UUID="GPU-a", instance="h:9400")
    assert covered(local_q, [prom_q]) and covered(local_gpu, [prom_gpu])
    assert not covered(local_q, [replace(prom_q, name="VllmQueueBacklog")])
    assert not covered(local_q, [alert("ModelQueueBacklog", "prometheus", model="other")])
    assert not covered(local_gpu, [alert("VRAMExhausted", "prometheus", gpu="0", uuid="GPU-b")])
    assert not covered(local_gpu, [alert("VRAMExhausted", "local", gpu="0", uuid="GPU-a")])
    cpu = alert("HighCPUUsage", "local", instance="gpu-1")
    node = alert("HighCPUUsage", "prometheus", instance="127.0.0.1:9100", job="node")
    assert covered(cpu, [node], here="gpu-1")  # node_exporter on loopback: this machine
    assert not covered(cpu, [node]) and not covered(cpu, [node], here="gpu-2")
    assert covered(cpu, [replace(node, labels=MappingProxyType({"instance": "gpu-1:9100"}))])
    assert not covered(cpu, [replace(node, labels=MappingProxyType({"instance": "gpu-7:9100"}))])
    other = cpu
    merged = merge((prom_q,), (local_q, other))
    assert [(a.name, a.source) for a in merged] == [
        ("HighCPUUsage", "local"),
        ("ModelQueueBacklog", "prometheus"),
    ]


# ---- the live collector: fake NVML, a real scrape, a recording, the CLI ----


@pytest.fixture
def exporter():
    with SimulatedExporter(
        "facesocial", [ModelLoad("yolov10n", 5.0, 0.01, 0.03, 0.09, 0.0, 60, vram_bytes=GIB)]
    ) as e:
        yield e


def test_live_collector_fires_local_alerts_and_a_recording_replays_them(
    scenario, exporter, tmp_path
):
    from vramtop.wiring import build_collector

    scenario(Scenario(gpus=(Gpu(uuid="GPU-full", memory_total=100 * GIB, memory_used=97 * GIB),)))
    rules = parse_rules(
        [
            {"name": "ModelQueueBacklog", "for": "30s"},
            {"name": "HighCPUUsage", "enabled": False},  # the test machine's CPU is not ours
        ],
        TARGETS,
    )
    now = [T0]
    settings = Settings(scrape=(exporter.url,), rules=rules)
    collector = build_collector(settings, {}, clock=lambda: now[0])
    frames = []
    try:
        for t, queue in [(0, 60), (10, 60), (30, 60), (40, 4), (50, 70)]:
            now[0] = T0 + t
            exporter.update_model("yolov10n", queue_length=queue)
            frames.append(collector.collect())
    finally:
        collector.close()  # its NVML event thread would take later tests' events

    def timeline(fs):
        return [
            sorted((a.name, a.state, a.active_since - T0) for a in f.alerts if a.source == "local")
            for f in fs
        ]

    expected = [
        [("ModelQueueBacklog", "pending", 0), ("VRAMExhausted", "pending", 0)],
        [("ModelQueueBacklog", "pending", 0), ("VRAMExhausted", "pending", 0)],
        [("ModelQueueBacklog", "firing", 0), ("VRAMExhausted", "firing", 0)],
        [("VRAMExhausted", "firing", 0)],
        [("ModelQueueBacklog", "pending", 50), ("VRAMExhausted", "firing", 0)],
    ]
    assert timeline(frames) == expected, [(f.sources, len(f.gpus)) for f in frames]
    gpu_alert = next(a for a in frames[2].alerts if a.name == "VRAMExhausted")
    assert dict(gpu_alert.labels) == {"gpu": "0", "uuid": "GPU-full"}
    assert gpu_alert.summary == "VRAM of GPU 0 is 97% used (limit 95%)"

    path = tmp_path / "rec.vramtop"
    with Recorder(str(path)) as rec:
        for f in frames:
            rec.append(f)
    with Recording.open(path) as replay:
        back = [replay.frame(i) for i in range(len(replay))]
        assert back == frames
        assert timeline(back) == expected
        # Replay's "next alert change" stops where a local alert changed state.
        assert replay.index_of_next_alert_change(0) == 2
        assert replay.index_of_next_alert_change(2) == 3


def test_once_json_lists_the_local_alert(run_vramtop, exporter, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        '[[rules]]\nname = "ModelQueueBacklog"\nfor = "0s"\n'
        'runbook_url = "https://wiki.example/queue?a=1&b=2"\n\n'
        '[[rules]]\nname = "HighCPUUsage"\nenabled = false\n'
    )
    done = run_vramtop(
        "--once", "--json", "--scrape", exporter.url, "--config", str(config), scenario=Scenario()
    )
    assert done.returncode == 0, done.stderr
    alerts = json.loads(done.stdout)["alerts"]
    assert alerts == [
        {
            "name": "ModelQueueBacklog",
            "severity": "warning",
            "state": "firing",
            "summary": "Model yolov10n has 60 requests queued (limit 50)",
            "labels": {"model": "yolov10n"},
            "active_since": alerts[0]["active_since"],
            "silenced": False,
            "source": "local",
            "runbook_url": "https://wiki.example/queue?a=1&b=2",
        }
    ]


def test_a_real_prometheus_alert_replaces_the_local_one(prometheus):
    from vramtop.wiring import build_collector

    name = "dedupe-model"
    with SimulatedExporter("facesocial", [ModelLoad(name, 5.0, 0.01, 0.03, 0.09, 0.0, 60)]) as e:
        target = prometheus.add_target(e.url, job="vt-local-rules")
        try:
            # The shipped ModelQueueBacklog (for: 2m) is pending within seconds of a scrape.
            prometheus.wait_for(
                f'ALERTS{{alertname="ModelQueueBacklog",model="{name}"}}', timeout=40
            )
            rules = parse_rules(
                [
                    {"name": "ModelQueueBacklog", "for": "0s"},
                    {"name": "HighCPUUsage", "enabled": False},
                    {
                        "name": "Probe",
                        "figure": "model.queue_length",
                        "comparison": ">",
                        "threshold": 50,
                    },
                ],
                TARGETS,
            )
            settings = Settings(prometheus_url=prometheus.url, rules=rules)
            frame = build_collector(settings, {}).collect()
        finally:
            prometheus.remove_target(target)
    mine = [
        (a.name, a.source, a.state)
        for a in frame.alerts
        if name in (a.labels.get("model"), a.labels.get("model_name"))
        and a.name in ("ModelQueueBacklog", "Probe")  # not the test-only Prometheus rules
    ]
    assert sorted(mine) == [
        ("ModelQueueBacklog", "prometheus", "pending"),  # Prometheus's, not the local firing one
        ("Probe", "local", "firing"),  # the local rules did run on this model
    ]


def test_a_headless_recording_replays_the_local_transitions(fake_lib, exporter, tmp_path):
    """The real ``vramtop --record --headless`` over the fake NVML and a real scrape: the
    recorded Frames carry the local alert pending, then firing once ``for`` has passed, and
    ``--replay`` shows it as it was."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from fakenvml import fake_env

    scenario_path = tmp_path / "scenario.toml"
    Scenario().write(scenario_path)
    config = tmp_path / "config.toml"
    config.write_text(
        '[[rules]]\nname = "ModelQueueBacklog"\nfor = "1s"\n\n'
        '[[rules]]\nname = "HighCPUUsage"\nenabled = false\n'
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("VRAMTOP_")}
    base["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env = fake_env(fake_lib, scenario_path, base)
    path = tmp_path / "local.rec"
    argv = ["--record", str(path), "--headless", "--interval", "0.2", "--config", str(config)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "vramtop", *argv, "--scrape", exporter.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )

    def backlog(f: Frame) -> list[AlertReading]:
        return [a for a in f.alerts if a.name == "ModelQueueBacklog"]

    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if path.exists() and path.stat().st_size:
                with Recording.open(path) as rec:
                    if len(rec) and any(a.state == "firing" for a in backlog(rec.frame(-1))):
                        break
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    with Recording.open(path) as rec:
        frames = [rec.frame(i) for i in range(len(rec))]
    seen = [(f.time, backlog(f)) for f in frames]
    assert all(len(alerts) == 1 for _, alerts in seen), err
    since = seen[0][1][0].active_since
    assert since == frames[0].time  # true from the first frame on
    states = [alerts[0].state for _, alerts in seen]
    assert all(alerts[0].active_since == since for _, alerts in seen)
    assert states == ["pending" if t - since < 1.0 else "firing" for t, _ in seen]
    assert "pending" in states and states[-1] == "firing", (states, err)
    assert seen[-1][1][0].source == "local"

    replayed = subprocess.run(
        [sys.executable, "-m", "vramtop", "--replay", str(path), "--once", "--json", "--at", "-0s"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert replayed.returncode == 0, replayed.stderr
    (shown,) = [a for a in json.loads(replayed.stdout)["alerts"] if a["source"] == "local"]
    assert (shown["name"], shown["state"], shown["labels"]) == (
        "ModelQueueBacklog",
        "firing",
        {"model": "yolov10n"},
    )


def test_the_readme_rules_and_links_examples_are_valid(tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    part = readme[readme.index("## Alerts without Prometheus") : readme.index("## Configuration")]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(re.findall(r"```toml\n(.*?)```", part, re.S)))
    s = load({}, str(path))
    assert [r.name for r in s.rules][-1] == "GpuHot"
    assert [name for name, _ in s.links] == ["grafana", "gpu", "logs", "alerts"]


def test_the_alerts_panel_shows_local_alerts_as_local():
    from test_tui_support import (
        STEPS,
        ScriptedCollector,
        frame_at,
        make_app,
        prefilled_history,
        run,
        screen_text,
        wait_until,
    )

    base = frame_at(STEPS)
    (local,) = LocalRules(DEFAULT_RULES, Targets()).evaluate(
        replace(base, gpus=(), models=(ModelReading("yolo", None, queue_length=70),))
    )
    quiet = replace(base, alerts=(), sources=tuple(s for s in base.sources if s.name != "alerts"))
    frames = [replace(base, alerts=(local,)), quiet]
    collector = ScriptedCollector(frames)
    app = make_app(collector, history=prefilled_history())

    async def go():
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_until(pilot, lambda: app.frames_received >= 1, "the first frame")
            await pilot.pause()
            row = next(
                line for line in screen_text(app).splitlines() if "ModelQueueBacklog" in line
            )
            assert "pending" in row and " local " in row
            assert "Model yolo has 70 " in row  # the summary, cut to the panel
            await pilot.press("r")
            await wait_until(pilot, lambda: app.frames_received >= 2, "the second frame")
            await pilot.pause()
            assert "none firing (local rules only)" in screen_text(app)
            await pilot.press("q")

    run(go())


def test_the_demo_runs_the_local_rules():
    """A rule of the user's fires at once on the demo's full GPUs; the shipped SlowAPIResponse
    (3 s for the demo's LLM) goes pending on a slow spell and fires after its 3 minutes."""
    from vramtop.wiring import build_collector

    rules = parse_rules(
        [
            {
                "name": "DemoFull",
                "figure": "gpu.memory_fraction",
                "comparison": ">",
                "threshold": 0.8,
            }
        ],
        TARGETS,
    )
    now = [T0]
    collector = build_collector(Settings(rules=rules), {}, demo=True, clock=lambda: now[0])
    states = []
    try:
        first = collector.collect()
        full = sorted(a.labels["gpu"] for a in first.alerts if a.name == "DemoFull")
        assert full == ["0", "1"] and all(
            a.source == "local" and a.state == "firing"
            for a in first.alerts
            if a.name == "DemoFull"
        )
        for t in range(0, 1200, 15):
            now[0] = T0 + t
            frame = collector.collect()
            slow = [a for a in frame.alerts if a.name == "SlowAPIResponse" and a.source == "local"]
            states += [(t, a.state, a.active_since - T0, a.labels["model"]) for a in slow]
    finally:
        collector.close()
    pending = [s for s in states if s[1] == "pending"]
    firing = [s for s in states if s[1] == "firing"]
    assert pending and firing and {s[3] for s in states} == {"llama-3.1-70b"}
    # Firing only once the condition has held for 3 minutes since it went pending.
    assert all(t - since >= 180 for t, _, since, _ in firing)
    assert all(t - since < 180 for t, _, since, _ in pending)
