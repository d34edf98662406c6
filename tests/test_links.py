"""Links out: [links] templates filled with hostile values, alerts' runbook_url from a real
Prometheus, the Markdown export's Links section, and the drill-downs' hyperlinks and copy key."""

from __future__ import annotations

from dataclasses import replace
from types import MappingProxyType

import pytest
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

from vramtop.cli import main
from vramtop.config import Settings, load
from vramtop.demo.exporter import ModelLoad, SimulatedExporter
from vramtop.export import render
from vramtop.links import Link, LinkError, expand, for_alert, for_gpu, for_model, parse_links
from vramtop.model import AlertReading, GpuReading, ModelReading

TEMPLATES = parse_links(
    {
        "grafana": "https://grafana.example/d/abc?var-model={model}&var-host={instance}",
        "gpu": "https://grafana.example/d/gpu?uuid={gpu_uuid}&host={instance}",
        "alerts": "https://alerts.example/#/alerts?filter={alertname}",
    }
)
RUNBOOK = "https://runbooks.example/queue-backlog"


def test_values_are_percent_encoded_whole():
    hostile = 'a"b c&d=e/f#g?[red]x[/red]<i>%'
    (link,) = expand(TEMPLATES[:1], {"model": hostile, "instance": "10.0.0.5:8000"})
    assert link == Link(
        "grafana",
        "https://grafana.example/d/abc?var-model=a%22b%20c%26d%3De%2Ff%23g%3F%5Bred%5Dx%5B%2Fred%5D"
        "%3Ci%3E%25&var-host=10.0.0.5%3A8000",
    )


def test_undecodable_bytes_in_a_name_are_percent_encoded_as_they_were():
    name = b"model-\xff".decode("utf-8", "surrogateescape")
    (link,) = expand(TEMPLATES[:1], {"model": name, "instance": "h"})
    assert link.url == "https://grafana.example/d/abc?var-model=model-%FF&var-host=h"


def test_a_template_applies_only_where_its_placeholders_have_values():
    m = ModelReading("m", None, instances=("h1:8000", "h2:8000"))
    assert [k.name for k in for_model(TEMPLATES, m, "box")] == [
        "grafana (h1:8000)",
        "grafana (h2:8000)",
    ]
    assert [k.url for k in for_model(TEMPLATES, ModelReading("m", None), "box")] == [
        "https://grafana.example/d/abc?var-model=m&var-host=box"
    ]
    g = GpuReading(0, "GPU-1", "H100")
    assert for_gpu(TEMPLATES, g, "box") == [
        Link("gpu", "https://grafana.example/d/gpu?uuid=GPU-1&host=box")
    ]
    assert for_gpu(TEMPLATES, replace(g, uuid=None), "box") == []
    a = AlertReading(
        "ModelQueueBacklog",
        "warning",
        "firing",
        labels=MappingProxyType({"model_name": "m"}),
        runbook_url=RUNBOOK,
    )
    assert for_alert(TEMPLATES, a) == [
        Link("runbook", RUNBOOK),
        Link("alerts", "https://alerts.example/#/alerts?filter=ModelQueueBacklog"),
    ]
    assert for_alert(TEMPLATES, replace(a, runbook_url="javascript:alert(1)"))[0].name == "alerts"
    for hostile in (
        "https://r.example/\x9b31m",
        "https://r.example/\u202eexe",
        "https://r.ex/\x1b]8",
    ):
        assert for_alert((), replace(a, runbook_url=hostile)) == []


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"g": "https://g.example/{model}/{pod}"}, "link 'g' has an unknown placeholder {pod}"),
        ({"g": "https://g.example/{model!r}"}, "link 'g' has an unknown placeholder {model}"),
        ({"g": "https://g.example/{model"}, "link 'g' is not a valid template"),
        ({"g": "javascript:alert(1)//{model}"}, "link 'g' must be an http:// or https:// URL"),
        ({"g": "{instance}/d/x"}, "link 'g' must be an http:// or https:// URL"),
        ({"g": "file:///etc/passwd"}, "link 'g' must be an http:// or https:// URL"),
        ({"g": "https://g.example/a b"}, "link 'g' must be an http:// or https:// URL"),
        ({"g": 3}, "link 'g' must be a URL template (text), got int"),
    ],
)
def test_bad_links_are_refused(table, message):
    with pytest.raises(LinkError) as err:
        parse_links(table)
    assert str(err.value).startswith(message)


def test_a_bad_link_in_the_config_file_exits_2_with_one_sentence(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text('[links]\ngrafana = "ftp://grafana.example/{model}"\n')
    assert main(["--config", str(path), "--once"], env={"HOME": str(tmp_path)}) == 2
    assert capsys.readouterr().err == (
        f"vramtop: {path}: key 'links' link 'grafana' must be an http:// or https:// URL "
        "without spaces, got 'ftp://grafana.example/{model}'\n"
    )
    path.write_text('[links]\ngrafana = "https://grafana.example/d/x?m={model}"\n')
    assert load({}, str(path)).links == (("grafana", "https://grafana.example/d/x?m={model}"),)


def test_markdown_export_lists_the_links():
    frame = frame_at(STEPS)
    backlog = next(a for a in frame.alerts if a.name == "ModelQueueBacklog")
    alerts = tuple(replace(a, runbook_url=RUNBOOK) if a is backlog else a for a in frame.alerts)
    frame = replace(frame, alerts=alerts, models=frame.models[:1], gpus=frame.gpus[:1])
    text = render(frame, "markdown", links=TEMPLATES[:2])
    section = text[text.index("### Links") :]
    m = frame.models[0].name
    assert section == (
        "### Links\n\n"
        f"- model {m}: [grafana](https://grafana.example/d/abc?var-model={m}"
        "&var-host=10.0.0.5%3A8000)\n"
        "- GPU 0: [gpu](https://grafana.example/d/gpu?uuid=GPU-00000000-aaaa-bbbb-cccc-dddddddddddd"
        "&host=gpu-box-01)\n"
        "- alert ModelQueueBacklog (qwen-7b): "
        "[runbook](https://runbooks.example/queue-backlog)\n"
    )
    assert "### Links" not in render(replace(frame, alerts=()), "markdown")


def test_markdown_link_cannot_be_broken_by_the_url():
    a = AlertReading("A", "warning", "firing", runbook_url="https://r.example/x)](javascript:1")
    frame = replace(frame_at(STEPS), alerts=(a,), models=(), gpus=())
    assert "[runbook](https://r.example/x%29%5D%28javascript:1)" in render(frame, "markdown")


def test_runbook_url_comes_from_a_real_prometheus_and_alertmanager(prometheus, alertmanager):
    from vramtop.sources.alerts import AlertSource
    from vramtop.sources.http import Endpoint

    model = "runbook model&x"
    with SimulatedExporter("facesocial", [ModelLoad(model, 5.0, 0.01, 0.03, 0.09, 0.0, 60)]) as e:
        target = prometheus.add_target(e.url, job="vt-links")
        try:
            alertmanager.wait_for_alert(
                {"alertname": "TestQueueBacklog", "model": model}, lambda a: True, timeout=60
            )
            source = AlertSource(Endpoint(prometheus.url), Endpoint(alertmanager.url))
            try:
                alerts = source.poll().alerts
            finally:
                source.close()
        finally:
            prometheus.remove_target(target)
    (mine,) = [a for a in alerts if a.name == "TestQueueBacklog" and a.labels["model"] == model]
    assert mine.source == "prometheus+alertmanager"
    assert mine.runbook_url == "https://runbooks.example/queue-backlog?model=runbook+model%26x"


def _links_in(text) -> list[tuple[str, str]]:
    return [
        (text.plain[s.start : s.end], s.style.link)
        for s in text.spans
        if not isinstance(s.style, str) and s.style.link
    ]


def test_drill_downs_show_links_and_c_copies_them():
    from vramtop.tui.screens.gpu import GpuScreen
    from vramtop.tui.screens.model import ModelScreen
    from vramtop.tui.widgets.alert_table import AlertTable
    from vramtop.tui.widgets.gpu_info import GpuInfo
    from vramtop.tui.widgets.model_info import ModelInfo

    frame = frame_at(STEPS)
    alerts = tuple(
        replace(a, runbook_url=RUNBOOK) if a.name == "ModelQueueBacklog" else a
        for a in frame.alerts
    )
    frame = replace(frame, alerts=alerts)
    settings = Settings(interval=3600.0, links=TEMPLATES)
    app = make_app(ScriptedCollector([frame]), history=prefilled_history(), settings=settings)
    qwen = "https://grafana.example/d/abc?var-model=qwen-7b&var-host=10.0.0.5%3A8000"
    gpu2 = "https://grafana.example/d/gpu?uuid=GPU-00000002-aaaa-bbbb-cccc-dddddddddddd"

    async def go():
        async with app.run_test(size=(160, 48)) as pilot:
            await wait_until(pilot, lambda: app.frames_received >= 1, "the first frame")
            await pilot.pause()
            await pilot.press("tab", "j", "enter")
            assert isinstance(app.screen, ModelScreen) and app.screen.model_name == "qwen-7b"
            await pilot.pause()
            info = app.screen.query_one(ModelInfo)
            assert _links_in(info._text) == [("grafana", qwen)]
            assert "Links grafana" in screen_text(app)
            await pilot.press("c")
            assert app.clipboard == qwen
            await pilot.press("escape")
            app.screen.query_one("#gpus").focus()
            await pilot.press("j", "j", "enter")
            assert isinstance(app.screen, GpuScreen) and app.screen.index == 2
            await pilot.pause()
            assert _links_in(app.screen.query_one(GpuInfo)._text) == [
                ("gpu", f"{gpu2}&host=gpu-box-01")
            ]
            await pilot.press("c")
            assert app.clipboard == f"{gpu2}&host=gpu-box-01"
            await pilot.press("escape")
            alerts = app.screen.query_one("#alerts", AlertTable)
            alerts.focus()
            await pilot.pause()
            row = next(i for i, k in enumerate(alerts.keys) if k.endswith(":ModelQueueBacklog"))
            alerts.move_cursor(row)
            await pilot.pause()
            assert _links_in(alerts._vt_subtitle) == [
                ("runbook", RUNBOOK),
                ("alerts", "https://alerts.example/#/alerts?filter=ModelQueueBacklog"),
            ]
            await pilot.press("c")
            assert app.clipboard == RUNBOOK
            await pilot.press("c")  # again: the alert's next link
            assert app.clipboard == "https://alerts.example/#/alerts?filter=ModelQueueBacklog"
            await pilot.press("q")

    run(go())


def test_c_without_links_says_how_to_get_them():
    app = make_app(ScriptedCollector([frame_at(STEPS)]), history=prefilled_history())

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: app.frames_received >= 1, "the first frame")
            await pilot.press("c")
            await pilot.pause()
            assert app.clipboard == ""
            (note,) = [n.message for n in app._notifications]
            assert note.startswith("No link for GPU ")
            assert note.endswith(
                ": add URL templates under [links] in the config "
                "(alerts also link their runbook_url)"
            )
            await pilot.press("q")

    run(go())


def test_the_snapshot_key_writes_the_links_into_the_markdown(tmp_path):
    settings = Settings(interval=3600.0, links=TEMPLATES[:1])
    app = make_app(ScriptedCollector([frame_at(STEPS)]), tmp_path=tmp_path, settings=settings)

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: app.frames_received >= 1, "the first frame")
            await pilot.press("x")
            await wait_until(
                pilot,
                lambda: any("Snapshot written" in (n.title or "") for n in app._notifications),
                "the snapshot",
            )
            await pilot.press("q")

    run(go())
    (md,) = tmp_path.glob("vramtop-*.md")
    text = md.read_text()
    assert (
        "- model qwen-7b: [grafana](https://grafana.example/d/abc?var-model=qwen-7b"
        "&var-host=10.0.0.5%3A8000)\n"
    ) in text


def test_a_recording_from_before_runbook_url_still_reads():
    from vramtop.model import Frame, HostReading
    from vramtop.record import codec

    a = AlertReading("A", "warning", "firing", runbook_url=RUNBOOK)
    frame = Frame(time=1.0, host=HostReading("h"), alerts=(a,))
    raw = codec.full(Frame, frame)
    assert raw["alerts"][0]["runbook_url"] == RUNBOOK
    del raw["alerts"][0]["runbook_url"]  # what an older vramtop wrote
    old = codec.Decoder().decode(codec.dump(raw), 1.0, key=True)
    assert old.alerts == (replace(a, runbook_url=None),)
    assert codec.Decoder().decode(codec.dump(codec.full(Frame, frame)), 1.0, key=True) == frame


def test_once_markdown_prints_the_links(run_vramtop, tmp_path):
    from vramtop.demo.scenario import Scenario

    config = tmp_path / "config.toml"
    config.write_text('[links]\nlogs = "https://logs.example/search?q={model}"\n')
    models = [ModelLoad("we ird&model", 5.0, 0.01, 0.03, 0.09, 0.0, 1)]
    with SimulatedExporter("facesocial", models) as e:
        done = run_vramtop(
            "--once",
            "--format",
            "markdown",
            "--scrape",
            e.url,
            "--config",
            str(config),
            scenario=Scenario(),
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(
        "### Links\n\n"
        "- model we ird\\&model: [logs](https://logs.example/search?q=we%20ird%26model)\n"
    )
