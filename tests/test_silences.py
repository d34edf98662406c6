"""Silences against the real Alertmanager the tests start (tests/promstack.py): what vramtop
sends is read back through Alertmanager's own API, and each way it can refuse is one sentence."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import httpx
import jsonschema
import pytest
from promstack import REPO, Alertmanager, free_port

from vramtop.collector import Collector
from vramtop.export import render
from vramtop.model import AlertReading, SilenceMatcher, SilenceReading
from vramtop.record.codec import Decoder, Encoder
from vramtop.silencing import (
    SilenceError,
    author,
    for_alert,
    matched_alerts,
    matcher_lines,
    matches,
    parse_matchers,
    parse_seconds,
)
from vramtop.sources.alerts import AlertSource
from vramtop.sources.base import SourceError
from vramtop.sources.host import HostSource
from vramtop.sources.http import Endpoint
from vramtop.sources.silences import SilenceClient, SilenceSource

QUOTED = 'say "hi" \\ bye'
MARKUP = "[bold]x[/bold]"


def stored(am: Alertmanager, silence_id: str) -> dict:
    r = httpx.get(f"{am.url}/api/v2/silence/{silence_id}", timeout=10)
    r.raise_for_status()
    return r.json()


def post_alert(am: Alertmanager, labels: dict[str, str], minutes: float = 30) -> None:
    """An alert as Prometheus would send it, straight to Alertmanager's API."""
    now = datetime.now(UTC)
    body = [
        {
            "labels": labels,
            "annotations": {"summary": "test alert"},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=minutes)).isoformat(),
        }
    ]
    httpx.post(f"{am.url}/api/v2/alerts", json=body, timeout=10).raise_for_status()


def test_create_list_expire_with_quotes_markup_and_regex(alertmanager: Alertmanager):
    client = SilenceClient(Endpoint(alertmanager.url))
    matchers = parse_matchers(
        f"alertname=VRAMExhausted\nmodel={MARKUP}\nsummary={QUOTED}\ninstance=~gpu-(a|b)-.*\n"
        "env!=dev\n"
    )
    assert matchers == (
        SilenceMatcher("alertname", "VRAMExhausted"),
        SilenceMatcher("model", MARKUP),
        SilenceMatcher("summary", QUOTED),
        SilenceMatcher("instance", "gpu-(a|b)-.*", is_regex=True),
        SilenceMatcher("env", "dev", is_equal=False),
    )
    start = time.time()
    sid = client.create(matchers, 3600, "alice", 'a "quoted" [red]comment[/red]', now=start)
    try:
        raw = stored(alertmanager, sid)
        assert raw["matchers"] == [
            {"name": "alertname", "value": "VRAMExhausted", "isRegex": False, "isEqual": True},
            {"name": "model", "value": MARKUP, "isRegex": False, "isEqual": True},
            {"name": "summary", "value": QUOTED, "isRegex": False, "isEqual": True},
            {"name": "instance", "value": "gpu-(a|b)-.*", "isRegex": True, "isEqual": True},
            {"name": "env", "value": "dev", "isRegex": False, "isEqual": False},
        ]
        assert raw["createdBy"] == "alice"
        assert raw["comment"] == 'a "quoted" [red]comment[/red]'
        assert raw["status"]["state"] == "active"
        listed = {s.id: s for s in client.active()}
        mine = listed[sid]
        assert mine.matchers == matchers
        assert (mine.created_by, mine.comment) == ("alice", 'a "quoted" [red]comment[/red]')
        assert mine.ends_at is not None and mine.starts_at is not None
        # Alertmanager moves a start in the past to its own now; the end is as sent (to the ms).
        assert mine.ends_at == pytest.approx(start + 3600, abs=0.001)
        # The source a collector polls sees the same.
        source = SilenceSource(Endpoint(alertmanager.url))
        assert sid in {s.id for s in source.poll().silences}
        source.close()
        client.expire(sid)
        assert stored(alertmanager, sid)["status"]["state"] == "expired"
        assert sid not in {s.id for s in client.active()}
    finally:
        client.close()


def test_a_bad_silence_is_alertmanagers_own_reason_in_one_sentence(alertmanager: Alertmanager):
    client = SilenceClient(Endpoint(alertmanager.url))
    with pytest.raises(SourceError) as backwards:
        client.create((SilenceMatcher("alertname", "X"),), -600, "alice", "ends before it starts")
    assert backwards.value.reason == (
        f"Alertmanager at {alertmanager.url} refused to create the silence: "
        "Failed to create silence: start time must be before end time"
    )
    with pytest.raises(SourceError) as regex:
        client.create((SilenceMatcher("job", "(unclosed", is_regex=True),), 600, "a", "bad regex")
    assert regex.value.reason == (
        f"Alertmanager at {alertmanager.url} refused to create the silence: silence invalid: "
        'invalid label matcher 0: invalid regular expression "(unclosed": error parsing regexp: '
        "missing closing ): `(unclosed`"
    )
    with pytest.raises(SourceError) as gone:
        client.expire("00000000-0000-0000-0000-000000000000")
    assert gone.value.reason == (
        f"Alertmanager at {alertmanager.url} has no such silence (HTTP 404): silence not found"
    )
    client.close()


def test_alertmanager_down_is_one_sentence():
    port = free_port()  # nothing listens there
    client = SilenceClient(Endpoint(f"http://127.0.0.1:{port}", timeout=2))
    with pytest.raises(SourceError) as err:
        client.create((SilenceMatcher("alertname", "X"),), 600, "alice", "down")
    assert err.value.reason == (
        f"Alertmanager at http://127.0.0.1:{port} is unreachable (connection refused)"
    )
    with pytest.raises(SourceError):
        client.active()
    client.close()


def test_credentials_are_sent_and_never_shown(alertmanager: Alertmanager):
    """The URL's password goes as basic auth (Alertmanager ignores it) and no message holds it."""
    port = free_port()
    url = f"http://bob:s3cr3t-pw@127.0.0.1:{port}"
    client = SilenceClient(Endpoint(url, timeout=2, headers={"X-Scope-OrgID": "t1"}))
    with pytest.raises(SourceError) as err:
        client.active()
    assert "s3cr3t-pw" not in err.value.reason and "bob" not in err.value.reason
    client.close()
    ok = SilenceClient(Endpoint(alertmanager.url.replace("://", "://bob:s3cr3t-pw@")))
    sid = ok.create((SilenceMatcher("alertname", "Creds"),), 600, "bob", "through basic auth")
    ok.expire(sid)
    ok.close()


def test_form_values_are_checked_before_any_request():
    with pytest.raises(SilenceError, match="matcher line 2 is not label=value"):
        parse_matchers("alertname=X\njust words")
    # A regex goes to Alertmanager as typed: RE2 is its to judge (see the 400 test).
    assert parse_matchers("job=~\\pL+") == (SilenceMatcher("job", "\\pL+", is_regex=True),)
    with pytest.raises(SilenceError, match="at least one matcher"):
        parse_matchers("\n  \n")
    with pytest.raises(SilenceError, match="must not match an empty value"):
        parse_matchers("job=~.*")
    assert [parse_seconds(t) for t in ("", "30m", "1h", "4h", "1d", "2h30m")] == [
        3600,
        1800,
        3600,
        14400,
        86400,
        9000,
    ]
    with pytest.raises(SilenceError, match="not a duration like 30m, 1h, 4h or 1d"):
        parse_seconds("soon")
    with pytest.raises(SilenceError, match="at least 1 minute"):
        parse_seconds("10s")
    assert author("oncall-bot") == "oncall-bot"
    assert author(None) and author("") == author(None)
    client = SilenceClient(Endpoint("http://127.0.0.1:9"))
    with pytest.raises(SilenceError, match="a comment is required"):
        client.create((SilenceMatcher("alertname", "X"),), 600, "a", "   ")
    client.close()


def test_prefill_from_an_alert_and_matching():
    alert = AlertReading(
        "VRAMExhausted",
        "critical",
        "firing",
        labels=MappingProxyType(
            {"alertname": "VRAMExhausted", "model": MARKUP, "prometheus": "p1", "gpu": "0"}
        ),
    )
    prefill = for_alert(alert)
    assert matcher_lines(prefill) == f"alertname=VRAMExhausted\ngpu=0\nmodel={MARKUP}"
    assert parse_matchers(matcher_lines(prefill)) == prefill
    silence = SilenceReading("s1", prefill)
    assert matches(silence, {"alertname": "VRAMExhausted", "gpu": "0", "model": MARKUP})
    assert not matches(silence, {"alertname": "VRAMExhausted", "gpu": "1", "model": MARKUP})
    regex = SilenceReading("s2", parse_matchers("alertname=~VRAM.*\nenv!=dev"))
    assert matches(regex, {"alertname": "VRAMExhausted"})  # a missing label is ""
    assert not matches(regex, {"alertname": "VRAMExhausted", "env": "dev"})
    pending = AlertReading("VRAMExhausted", "critical", "pending")
    assert matched_alerts(regex, [alert, pending]) == [alert]


def test_silenced_alert_is_reported_silenced(alertmanager: Alertmanager):
    """A silence vramtop creates mutes the alert in Alertmanager's own view of it."""
    labels = {"alertname": "SilenceMe", "model": MARKUP, "severity": "warning"}
    post_alert(alertmanager, labels)
    alertmanager.wait_for_alert({"alertname": "SilenceMe"})
    client = SilenceClient(Endpoint(alertmanager.url))
    alert = AlertReading("SilenceMe", "warning", "firing", labels=MappingProxyType(labels))
    sid = client.create(for_alert(alert), 600, "alice", "muting the test alert")
    try:
        alertmanager.wait_for_alert(
            {"alertname": "SilenceMe"}, lambda a: sid in a["status"]["silencedBy"]
        )
    finally:
        client.expire(sid)
        client.close()


SCHEMA = json.loads((REPO / "vramtop/schemas/vramtop-1.schema.json").read_text())


def collector_for(am: Alertmanager) -> Collector:
    """The real collector over this machine and the Alertmanager (no Prometheus, no NVML)."""
    ep = Endpoint(am.url)
    return Collector(host=HostSource(), remote=[AlertSource(None, ep), SilenceSource(ep)])


def test_exports_list_the_silence_against_the_firing_alert_it_matches(alertmanager):
    firing = {"alertname": "ExportMe", "model": MARKUP, "severity": "critical"}
    other = {"alertname": "ExportOther", "severity": "warning"}
    post_alert(alertmanager, firing)
    post_alert(alertmanager, other)
    alertmanager.wait_for_alert({"alertname": "ExportMe"})
    alertmanager.wait_for_alert({"alertname": "ExportOther"})
    client = SilenceClient(Endpoint(alertmanager.url))
    start = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()
    until = time.time() + 7200
    matchers = (SilenceMatcher("alertname", "ExportMe"), SilenceMatcher("model", MARKUP))
    sid = client.create(matchers, until - start, "alice", 'quiet "please"', now=start)
    unrelated = client.create((SilenceMatcher("alertname", "Nothing"),), 600, "bob", "no alert")
    collector = collector_for(alertmanager)
    try:
        frame = collector.collect()
        assert {s.id for s in frame.silences} >= {sid, unrelated}
        assert collector.silences is not None
        doc = json.loads(render(frame, "json"))
        jsonschema.validate(doc, SCHEMA)
        mine = [s for s in doc["silences"] if s["id"] == sid]
        assert [s["id"] for s in doc["silences"] if s["id"] == unrelated] == []  # mutes nothing
        assert mine == [
            {
                "id": sid,
                "matchers": [
                    {"name": "alertname", "value": "ExportMe", "is_regex": False, "is_equal": True},
                    {"name": "model", "value": MARKUP, "is_regex": False, "is_equal": True},
                ],
                "created_by": "alice",
                "comment": 'quiet "please"',
                "starts_at": mine[0]["starts_at"],  # Alertmanager's own now
                "ends_at": datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "alerts": [{"name": "ExportMe", "labels": firing}],
            }
        ]
        # Alertmanager now reports the alert silenced, and the row says so.
        alert = next(a for a in doc["alerts"] if a["name"] == "ExportMe")
        assert alert["silenced"] is True
        text = render(frame, "text")
        section = text.split("Silences", 1)[1]
        assert f"alertname=ExportMe, model={MARKUP}" in section
        assert 'quiet "please"' in section and "alice" in section
        markdown = render(frame, "markdown")
        assert "Silences" in markdown and "ExportMe" in markdown.split("Silences", 1)[1]
    finally:
        client.expire(sid)
        client.expire(unrelated)
        client.close()


def test_recordings_keep_silences_and_old_ones_have_none():
    from test_tui_support import frame_at

    silence = SilenceReading(
        "abc",
        (SilenceMatcher("alertname", "X"), SilenceMatcher("model", MARKUP, True, False)),
        "alice",
        'a "comment"',
        1795000000.0,
        1795003600.0,
    )
    plain = frame_at(1)
    frames = [replace(plain, silences=s) for s in ((silence,), (silence,), ())]
    enc, dec = Encoder(), Decoder()
    for i, f in enumerate(frames):
        assert dec.decode(enc.encode(f, key=i == 0), f.time, i == 0) == f
    from vramtop.record.codec import full

    old = full(type(plain), plain)
    del old["silences"]  # a recording made before silences existed
    assert Decoder().decode(json.dumps(old).encode(), plain.time, True).silences == ()


CHECK_AUTH = "check the token or password"
PROXY = "an HTML page (a proxy or login page in the way)"


@pytest.mark.parametrize(
    ("mode", "status", "body", "said"),
    [
        ("unauthorized", 401, None, f"refused to create the silence (HTTP 401): {CHECK_AUTH}"),
        ("status", 403, "forbidden", f"refused to create the silence (HTTP 403): {CHECK_AUTH}"),
        ("status", 503, "try later", "could not create the silence (HTTP 503): try later"),
        ("html", 502, None, f"could not create the silence (HTTP 502): {PROXY}"),
        ("hang", 0, None, "did not answer within 1 s"),
    ],
)
def test_every_refusal_is_one_sentence_and_auth_goes_along(mode, status, body, said):
    from badserver import BadServer

    server = BadServer()
    server.mode, server.status, server.body = mode, status, body
    token = "tok-" + "9" * 20
    ep = Endpoint(server.url, bearer_token=token, headers={"X-Scope-OrgID": "team-a"}, timeout=1)
    client = SilenceClient(ep)
    try:
        with pytest.raises(SourceError) as err:
            client.create((SilenceMatcher("alertname", "X"),), 600, "alice", "why")
        assert err.value.reason == f"Alertmanager at {server.url} {said}"
        assert token not in err.value.reason
        sent = server.requests[0]
        assert sent["path"] == "/api/v2/silences"
        assert sent["Authorization"] == f"Bearer {token}"
        assert sent["X-Scope-OrgID"] == "team-a"
        assert json.loads(sent["body"])["matchers"] == [
            {"name": "alertname", "value": "X", "isRegex": False, "isEqual": True}
        ]
    finally:
        server.close()
        client.close()


def test_the_demo_shows_a_silence_on_its_backlog():
    from vramtop.demo.serving import DemoAlertSource

    t0 = 1_795_000_200.0 - (1_795_000_200.0 % 600)  # a demo cycle starts; the backlog at 200 s

    def frame_at(offset: float):
        clock = lambda: t0 + offset  # noqa: E731
        return Collector(host=HostSource(), remote=[DemoAlertSource(clock)], clock=clock).collect()

    early = frame_at(260)  # firing, not yet silenced
    assert early.silences == ()
    assert [a.silenced for a in early.alerts if a.name == "ModelQueueBacklog"] == [False]
    later = frame_at(300)
    doc = json.loads(render(later, "json"))
    jsonschema.validate(doc, SCHEMA)
    assert doc["silences"] == [
        {
            "id": f"demo-{int(t0 + 275)}",
            "matchers": [
                {
                    "name": "alertname",
                    "value": "ModelQueueBacklog",
                    "is_regex": False,
                    "is_equal": True,
                },
                {"name": "model", "value": "yolov10n", "is_regex": False, "is_equal": True},
            ],
            "created_by": "oncall",
            "comment": "scaling out yolov10n (demo)",
            "starts_at": datetime.fromtimestamp(t0 + 275, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ends_at": datetime.fromtimestamp(t0 + 3875, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "alerts": [
                {
                    "name": "ModelQueueBacklog",
                    "labels": {
                        "alertname": "ModelQueueBacklog",
                        "severity": "warning",
                        "model": "yolov10n",
                        "instance": "demo-gpu-host:8101",
                    },
                }
            ],
        }
    ]
    assert [a["silenced"] for a in doc["alerts"] if a["name"] == "ModelQueueBacklog"] == [True]
    assert "scaling out yolov10n (demo)" in render(later, "text").split("Silences", 1)[1]
