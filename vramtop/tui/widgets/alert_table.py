"""Alerts: firing first, then pending, by severity and age; silenced ones dimmed."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text

from vramtop import clean
from vramtop.export.columns import ALERT_COLUMNS
from vramtop.export.overview import SEVERITY_RANK, SOURCE_WORDS, alert_rank
from vramtop.links import MODEL_LABELS, Link, for_alert
from vramtop.model import AlertReading
from vramtop.tui import cells
from vramtop.tui.linking import links_text
from vramtop.tui.view import View
from vramtop.tui.widgets.frame_table import Col, FrameTable, Item


def for_model(name: str) -> Callable[[AlertReading], bool]:
    return lambda a: any(a.labels.get(k) == name for k in MODEL_LABELS)


class AlertTable(FrameTable):
    COLUMNS: ClassVar[tuple[Col, ...]] = ALERT_COLUMNS
    DEFAULT_SORT = "state"
    NOUN = "alerts"

    def __init__(
        self,
        only: Callable[[AlertReading], bool] | None = None,
        *,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.only = only
        self.by_key: dict[str, AlertReading] = {}

    def items_for(self, view: View) -> list[Item]:
        alerts = view.frame.alerts
        if self.only is not None:
            alerts = tuple(a for a in alerts if self.only(a))
        items = [self._item(view, a, i) for i, a in enumerate(alerts)]
        self.by_key = {item.key: a for item, a in zip(items, alerts, strict=True)}
        return items

    def model_of(self, key: str) -> str | None:
        """The model an alert is about (its model label), to open from the list."""
        alert = self.by_key.get(key)
        if alert is None:
            return None
        return next((alert.labels[k] for k in MODEL_LABELS if k in alert.labels), None)

    def selected(self) -> AlertReading | None:
        key = self.selected_key
        return self.by_key.get(key) if key is not None else None

    def selected_links(self, view: View) -> list[Link]:
        """The highlighted alert's runbook and [links]: shown under the list, copied by c."""
        alert = self.selected()
        return for_alert(view.links, alert) if alert is not None else []

    def footnote(self, view: View) -> Text | None:
        """Under the focused list: where the highlighted alert comes from (the From column may
        not fit) and its links, which c copies."""
        alert = self.selected() if self.has_focus else None
        if alert is None:
            return None
        p = view.palette
        out = Text("from ", p.dim)
        out.append(clean.literal(alert.source), p.text)
        links = links_text(self.selected_links(view), p)
        if links:
            out.append("  ")
            out.append_text(links)
        return out

    def _item(self, view: View, a: AlertReading, i: int) -> Item:
        p = view.palette
        firing = a.state == "firing"
        sev = SEVERITY_RANK.get(a.severity.lower(), 4)
        if a.silenced:
            state_text = cells.plain("silenced", p.dim)
            tone = p.dim
        elif firing:
            state_text = cells.plain("FIRING", p.bad if sev <= 1 else p.warn)
            tone = p.text
        else:
            state_text = cells.plain(a.state or "pending", p.warn if sev <= 1 else p.dim)
            tone = p.text
        age = view.now - a.active_since if a.active_since else None
        c: dict[str, Text] = {
            "state": state_text,
            "severity": cells.lit(a.severity, tone if a.silenced or sev > 1 else p.bad),
            "age": cells.plain(cells.age(age) if age is not None else cells.DASH, tone, "right"),
            "name": cells.lit(a.name, tone),
            "source": cells.lit(SOURCE_WORDS.get(a.source, a.source), p.dim),
            "summary": cells.lit(a.summary or cells.DASH, p.dim if a.silenced else tone),
        }
        return Item(
            key=f"{i}:{a.name}",
            cells=c,
            sort={
                "state": alert_rank(a, view.now),
                "severity": (sev, a.severity),
                "age": age,
                "name": a.name.lower(),
                "source": a.source,
                "summary": a.summary.lower(),
            },
            search=f"{a.name} {a.source} {a.summary} {' '.join(a.labels.values())}".lower(),
        )
