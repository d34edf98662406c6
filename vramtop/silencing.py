"""Silences as values: the form's matchers and duration, the matchers that prefill it (an
alert, a model, a GPU), and Alertmanager's rule for which alerts a silence mutes. No I/O: the
client is vramtop.sources.silences."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from vramtop import durations
from vramtop.clean import one_line
from vramtop.model import AlertReading, Frame, SilenceMatcher, SilenceReading

DEFAULT_DURATION = "1h"
DURATIONS = ("30m", "1h", "4h", "1d")
MAX_SECONDS = 365 * 86400.0  # a year: beyond that it is a typo, not a silence
MAX_KEPT = 500  # active silences a Frame holds
# Labels that differ between copies of one alert: a silence on them would miss the others.
_NOT_IDENTITY = {"alertstate", "prometheus", "prometheus_replica", "replica", "__replica__"}
MODEL_LABELS = ("model", "model_name", "served_model_name", "model_id")
GPU_LABELS = ("gpu_uuid", "UUID", "uuid")
_LINE = re.compile(r"\s*([^\s=!~]+)\s*(=~|!~|!=|=)(.*)")


class SilenceError(ValueError):
    """What the user typed cannot be a silence; the message is the sentence to show."""


# -- what the form holds -------------------------------------------------------------------------


def parse_matchers(text: str) -> tuple[SilenceMatcher, ...]:
    """One matcher a line, ``label=value``, ``label!=value``, ``label=~regex`` or
    ``label!~regex``. The value is everything after the operator, exactly (quotes and brackets
    included); blank lines are skipped."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE.fullmatch(line.rstrip("\r"))
        if m is None:
            raise SilenceError(
                f"matcher line {n} is not label=value, label!=value, label=~regex or label!~regex"
            )
        # A regex is Alertmanager's (Go RE2) to judge: its 400 names what is wrong with it.
        name, op, value = m.groups()
        out.append(SilenceMatcher(name, value, op.endswith("~"), op.startswith("=")))
    if not out:
        raise SilenceError("a silence needs at least one matcher")
    if all(_one(m, "") for m in out):
        # Alertmanager refuses a silence whose matchers all match the empty string.
        raise SilenceError("at least one matcher must not match an empty value (it would mute all)")
    return tuple(out)


def matcher_lines(matchers: Iterable[SilenceMatcher]) -> str:
    return "\n".join(m.text for m in matchers)


def parse_seconds(text: str) -> float:
    """``1h``, ``30m``, ``4h``, ``1d`` or any duration such as ``2h30m``; SilenceError else."""
    try:
        seconds = durations.parse(text.strip() or DEFAULT_DURATION, durations.SPAN)
    except ValueError:
        raise SilenceError(
            f"duration {one_line(text, 40)!r} is not a duration like 30m, 1h, 4h or 1d"
        ) from None
    if seconds < 60 or seconds > MAX_SECONDS:
        raise SilenceError("a silence lasts at least 1 minute and at most 365 days")
    return seconds


def author(configured: str | None) -> str:
    """``createdBy``: the configured ``silence_author``, else the login name."""
    if configured:
        return configured
    try:
        import getpass  # with termios: only for a silence's author

        return getpass.getuser()
    except (OSError, KeyError):  # no login name and no passwd entry (a bare container)
        return "vramtop"


def for_alert(alert: AlertReading) -> tuple[SilenceMatcher, ...]:
    """Exactly this alert: every label it carries but those that differ between its copies."""
    labels = {k: v for k, v in alert.labels.items() if k not in _NOT_IDENTITY}
    labels.setdefault("alertname", alert.name)
    first = sorted(labels, key=lambda k: (k != "alertname", k))
    return tuple(SilenceMatcher(k, labels[k]) for k in first)


def for_model(name: str) -> tuple[SilenceMatcher, ...]:
    return (SilenceMatcher("model", name),)


def for_gpu(uuid: str) -> tuple[SilenceMatcher, ...]:
    return (SilenceMatcher("gpu_uuid", uuid),)


# -- which silences matter -----------------------------------------------------------------------


def _one(m: SilenceMatcher, value: str) -> bool:
    if m.is_regex:
        try:
            hit = re.fullmatch(m.value, value) is not None
        except re.error:  # Go's RE2 syntax that Python does not share: not ours to judge
            return False
    else:
        hit = value == m.value
    return hit == m.is_equal


def matches(silence: SilenceReading, labels: Mapping[str, str]) -> bool:
    """Alertmanager's rule: every matcher holds; a missing label is the empty string."""
    return bool(silence.matchers) and all(_one(m, labels.get(m.name, "")) for m in silence.matchers)


def alert_labels(alert: AlertReading) -> dict[str, str]:
    return {"alertname": alert.name, **alert.labels}


def matched_alerts(
    silence: SilenceReading, alerts: Iterable[AlertReading], firing_only: bool = True
) -> list[AlertReading]:
    return [
        a
        for a in alerts
        if (a.state == "firing" or not firing_only) and matches(silence, alert_labels(a))
    ]


def about(silence: SilenceReading, labels: tuple[str, ...], value: str) -> bool:
    """The silence names ``value`` under one of ``labels`` (a model's or a GPU's silences)."""
    return any(m.name in labels and m.is_equal and _one(m, value) for m in silence.matchers)


def silenced(frame: Frame) -> list[SilenceReading]:
    """The frame's active silences that mute at least one firing alert."""
    return [s for s in frame.silences if matched_alerts(s, frame.alerts)]
