"""Silences from the live view (Pilot): the form opened from an alert row and the drill-downs,
the silence created in the real Alertmanager, refusals kept in the form, the list with expiry,
and every silence key absent where the app may not act."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from promstack import Alertmanager, free_port
from test_tui_support import (
    STEPS,
    ScriptedCollector,
    frame_at,
    make_app,
    run,
    screen_text,
    wait_until,
)
from textual.widgets import Input, TextArea

from vramtop.collector import Collector
from vramtop.config import Settings
from vramtop.model import SilenceMatcher
from vramtop.sources.alerts import AlertSource
from vramtop.sources.host import HostSource
from vramtop.sources.http import Endpoint
from vramtop.sources.silences import SilenceClient, SilenceSource
from vramtop.tui.keys import help_sections
from vramtop.tui.screens.gpu import GpuScreen
from vramtop.tui.screens.help import HelpScreen
from vramtop.tui.screens.model import ModelScreen
from vramtop.tui.screens.overview import OverviewScreen
from vramtop.tui.screens.silence import SilenceForm
from vramtop.tui.screens.silences import ConfirmExpire, SilencesScreen
from vramtop.tui.widgets.frame_table import FrameTable

MARKUP = "[bold]x[/bold]"
QUOTED = 'he said "stop"'


def table(app, selector: str) -> FrameTable:
    return app.screen.query_one(selector, FrameTable)


async def started(pilot, app) -> None:
    await wait_until(pilot, lambda: app.frames_received >= 1, "a frame")
    await pilot.pause()


def post_alert(am: Alertmanager, labels: dict[str, str]) -> None:
    now = datetime.now(UTC)
    body = [
        {
            "labels": labels,
            "annotations": {"summary": "pilot alert"},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=30)).isoformat(),
        }
    ]
    httpx.post(f"{am.url}/api/v2/alerts", json=body, timeout=10).raise_for_status()


def silences_in(am: Alertmanager) -> list[dict]:
    r = httpx.get(f"{am.url}/api/v2/silences", timeout=10)
    r.raise_for_status()
    return r.json()


def live_collector(am: Alertmanager) -> Collector:
    ep = Endpoint(am.url)
    return Collector(host=HostSource(), remote=[AlertSource(None, ep), SilenceSource(ep)])


class WithSilences(ScriptedCollector):
    """The fixed test frames, with a silence client as the real collector offers one."""

    def __init__(self, client: SilenceClient | None) -> None:
        super().__init__([frame_at(STEPS)])
        self.silences = client


def select_alert(app, name: str, selector: str = "#alerts") -> None:
    alerts = table(app, selector)
    alerts.focus()
    alerts.move_cursor(next(i for i, k in enumerate(alerts.keys) if k.split(":", 1)[1] == name))


def test_silence_an_alert_from_its_row_into_alertmanager(alertmanager):
    labels = {"alertname": "PilotAlert", "model": MARKUP, "note": QUOTED, "severity": "critical"}
    post_alert(alertmanager, labels)
    alertmanager.wait_for_alert({"alertname": "PilotAlert"})
    app = make_app(live_collector(alertmanager), settings=Settings(silence_author="oncall"))

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await started(pilot, app)
            select_alert(app, "PilotAlert")
            await pilot.press("m")
            form = app.screen
            assert isinstance(form, SilenceForm)
            assert form.about == "alert PilotAlert"
            # Prefilled from the alert's labels, shown (and later sent) exactly.
            assert form.matchers_text == (
                f"alertname=PilotAlert\nmodel={MARKUP}\nnote={QUOTED}\nseverity=critical"
            )
            assert form.duration_text == "1h"
            assert f"model={MARKUP}" in screen_text(app)  # on screen as typed, not bold
            await pilot.press("enter")  # no comment yet: refused before any request
            assert isinstance(app.screen, SilenceForm)
            assert form.error == "a comment is required: say why the alert is silenced"
            # Alertmanager's 400 (an RE2 error) is one sentence on the form, which keeps all.
            area = form.query_one("#silence-matchers", TextArea)
            prefilled = area.text
            area.text = "alertname=~(PilotAlert"
            await pilot.press(*"rollout", "enter")
            await wait_until(pilot, lambda: bool(form.error) and not form.busy, "the 400")
            assert form.error == (
                f"Alertmanager at {alertmanager.url} refused to create the silence: silence "
                'invalid: invalid label matcher 0: invalid regular expression "(PilotAlert": '
                "error parsing regexp: missing closing ): `(PilotAlert`"
            )
            assert app.screen is form and form.comment_text == "rollout"
            area.text = prefilled
            await pilot.press("enter")
            await wait_until(pilot, lambda: not isinstance(app.screen, SilenceForm), "created")
            assert isinstance(app.screen, OverviewScreen)

    run(go())
    mine = [s for s in silences_in(alertmanager) if s["comment"] == "rollout"]
    assert len(mine) == 1 and mine[0]["status"]["state"] == "active"
    assert mine[0]["createdBy"] == "oncall"
    assert mine[0]["matchers"] == [
        {"name": "alertname", "value": "PilotAlert", "isRegex": False, "isEqual": True},
        {"name": "model", "value": MARKUP, "isRegex": False, "isEqual": True},
        {"name": "note", "value": QUOTED, "isRegex": False, "isEqual": True},
        {"name": "severity", "value": "critical", "isRegex": False, "isEqual": True},
    ]
    httpx.delete(f"{alertmanager.url}/api/v2/silence/{mine[0]['id']}", timeout=10)


def test_alertmanager_down_keeps_the_form_and_says_why():
    port = free_port()  # nothing listens: Alertmanager is down
    client = SilenceClient(Endpoint(f"http://127.0.0.1:{port}", timeout=2))
    app = make_app(WithSilences(client))

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await started(pilot, app)
            select_alert(app, "HighLatency")
            await pilot.press("m")
            form = app.screen
            assert isinstance(form, SilenceForm)
            area = form.query_one("#silence-matchers", TextArea)
            area.text = "alertname=~High.*\nmodel=qwen-7b"
            form.query_one("#silence-duration", Input).value = "4h"
            form.query_one("#silence-comment", Input).focus()
            await pilot.press(*"deploy", "enter")
            await wait_until(pilot, lambda: bool(form.error) and not form.busy, "the refusal")
            assert form.error == (
                f"Alertmanager at http://127.0.0.1:{port} is unreachable (connection refused)"
            )
            assert app.screen is form  # nothing lost
            assert form.matchers_text == "alertname=~High.*\nmodel=qwen-7b"
            assert (form.duration_text, form.comment_text) == ("4h", "deploy")
            # A typo is refused in the form, with what was wrong.
            area.text = "alertname=~High.*\nmodel qwen-7b"
            await pilot.press("enter")
            assert form.error == (
                "matcher line 2 is not label=value, label!=value, label=~regex or label!~regex"
            )
            await pilot.press("escape")
            assert isinstance(app.screen, OverviewScreen)

    run(go())
    client.close()


def test_model_drilldown_prefills_the_model_and_lists_then_expires(alertmanager):
    client = SilenceClient(Endpoint(alertmanager.url))
    sid = client.create((SilenceMatcher("model", "qwen-7b"),), 3600, "alice", "qwen upgrade")
    other = client.create((SilenceMatcher("model", "unseen"),), 3600, "alice", "other model")
    app = make_app(WithSilences(client))

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await started(pilot, app)
            models = table(app, "#models")
            models.focus()
            models.move_cursor(models.keys.index("qwen-7b"))
            await pilot.press("enter")
            assert isinstance(app.screen, ModelScreen)
            await pilot.press("m")
            assert isinstance(app.screen, SilenceForm)
            assert app.screen.matchers_text == "model=qwen-7b"
            assert app.screen.about == "model qwen-7b"
            await pilot.press("escape", "M")
            listing = app.screen
            assert isinstance(listing, SilencesScreen)
            await wait_until(pilot, lambda: listing.loaded, "the list")
            assert [s.id for s in listing.shown] == [sid]  # not the unseen model's
            await pilot.press("e")
            assert isinstance(app.screen, ConfirmExpire)
            await pilot.press("n")  # kept
            assert app.screen is listing
            await pilot.press("e", "y")
            await wait_until(pilot, lambda: listing.shown == [] and listing.loaded, "expired")

    run(go())
    states = {s["id"]: s["status"]["state"] for s in silences_in(alertmanager)}
    assert (states[sid], states[other]) == ("expired", "active")
    client.expire(other)
    client.close()


def test_gpu_drilldown_prefills_its_uuid_and_lists_its_silences(alertmanager):
    client = SilenceClient(Endpoint(alertmanager.url))
    uuid = "GPU-00000002-aaaa-bbbb-cccc-dddddddddddd"
    sid = client.create((SilenceMatcher("gpu_uuid", uuid),), 3600, "alice", "gpu 2 maintenance")
    app = make_app(WithSilences(client))

    async def go():
        async with app.run_test(size=(120, 40)) as pilot:
            await started(pilot, app)
            gpus = table(app, "#gpus")
            gpus.move_cursor(gpus.keys.index("2"))
            await pilot.press("enter")
            assert isinstance(app.screen, GpuScreen)
            await pilot.press("m")
            assert isinstance(app.screen, SilenceForm)
            assert app.screen.matchers_text == f"gpu_uuid={uuid}"
            assert app.screen.about == f"GPU 2 ({uuid})"
            await pilot.press("escape", "M")
            listing = app.screen
            assert isinstance(listing, SilencesScreen)
            await wait_until(pilot, lambda: listing.loaded, "the list")
            assert [s.id for s in listing.shown] == [sid]
            assert "gpu 2 maintenance" in screen_text(app)

    run(go())
    client.expire(sid)
    client.close()


def test_no_silence_keys_when_read_only_or_without_alertmanager():
    client = SilenceClient(Endpoint("http://127.0.0.1:9"))
    cases = [
        make_app(WithSilences(client), settings=Settings(interval=3600, readonly=True)),
        make_app(WithSilences(None)),
    ]
    for app in cases:

        async def go(app=app):
            async with app.run_test(size=(120, 40)) as pilot:
                await started(pilot, app)
                assert not app.may_act or app.silences is None
                select_alert(app, "HighLatency")
                await pilot.press("m", "M")
                assert isinstance(app.screen, OverviewScreen)  # the keys do nothing
                titles = [c.title for c in app.get_system_commands(app.screen)]
                assert "Silence…" not in titles and "Silences" not in titles
                assert "Silences (Alertmanager)" not in [t for t, _ in help_sections(app)]
                await pilot.press("question_mark")
                assert isinstance(app.screen, HelpScreen)
                assert "Silence" not in app.screen.text.plain

        run(go())
    live = make_app(WithSilences(client))
    assert live.may_act and live.can_silence
    assert "Silences (Alertmanager)" in [t for t, _ in help_sections(live)]
    titles = [c.title for c in live.get_system_commands(OverviewScreen())]
    assert "Silence…" in titles and "Silences" in titles
    client.close()
