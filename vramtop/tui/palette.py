"""Rich styles for cell text, derived from the current theme's variables (no colour literals).

DataTable cells and charts are Rich ``Text``; their colours come from here, rebuilt whenever
the theme changes. In monochrome (``--no-color``, ``NO_COLOR``) severity is bold/reverse.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.style import Style
from textual.color import Color, ColorParseError

from vramtop.records import record

_SEVERITY_ROLE = {"critical": "bad", "warning": "warn", "info": "primary", "ok": "good"}


@record(slots=False)
class Palette:
    bad: Style
    warn: Style
    good: Style
    dim: Style
    accent: Style
    primary: Style
    text: Style
    badge: Style  # DEMO / PAUSED labels
    alarm: Style  # reverse-video error label: STALE, LOST
    series: tuple[Style, ...]  # chart lines, distinct from each other
    # Faint backgrounds by severity for chart bands (throttling); none in monochrome, where
    # the band's own row under the chart says it.
    tints: tuple[tuple[str, Style], ...] = ()

    def role(self, name: str | None) -> Style:
        return getattr(self, name) if name else self.text

    def severity(self, name: str) -> Style:
        """A health finding's style: critical, warning, info, ok, or unknown (dim)."""
        return getattr(self, _SEVERITY_ROLE.get(name, "dim"))

    def tint(self, severity: str) -> Style | None:
        return next((style for name, style in self.tints if name == severity), None)

    @classmethod
    def from_variables(cls, variables: Mapping[str, str], mono: bool = False) -> Palette:
        background = _colour(variables.get("background"), Color(0, 0, 0))
        foreground = _colour(variables.get("foreground"), Color(224, 224, 224))

        def pick(name: str, fallback: Color) -> str:
            return (background + _colour(variables.get(name), fallback)).hex

        error = pick("error", Color(220, 60, 80))
        warning = pick("warning", Color(240, 180, 70))
        success = pick("success", Color(80, 200, 120))
        primary = pick("primary", Color(90, 170, 230))
        secondary = pick("secondary", Color(160, 140, 255))
        accent = pick("accent", Color(240, 180, 70))
        fg = (background + foreground).hex
        dim = (background + foreground).blend(background, 0.45).hex
        if mono:
            return cls(
                bad=Style(color=fg, bold=True, reverse=True),
                warn=Style(color=fg, bold=True),
                good=Style(color=fg),
                dim=Style(color=dim),
                accent=Style(color=fg, bold=True),
                primary=Style(color=fg),
                text=Style(color=fg),
                badge=Style(color=fg, bold=True, reverse=True),
                alarm=Style(color=fg, bold=True, reverse=True),
                series=(Style(color=fg), Style(color=dim), Style(color=fg, bold=True)),
            )
        return cls(
            bad=Style(color=error, bold=True),
            warn=Style(color=warning),
            good=Style(color=success),
            dim=Style(color=dim),
            accent=Style(color=accent),
            primary=Style(color=primary),
            text=Style(color=fg),
            badge=Style(color=background.hex, bgcolor=accent, bold=True),
            alarm=Style(color=background.hex, bgcolor=error, bold=True),
            series=(Style(color=primary), Style(color=secondary), Style(color=accent)),
            tints=tuple(
                (name, Style(bgcolor=Color.parse(colour).blend(background, 0.78).hex))
                for name, colour in (("critical", error), ("warning", warning), ("info", primary))
            ),
        )


def _colour(value: str | None, fallback: Color) -> Color:
    if not value:
        return fallback
    try:
        return Color.parse(value)
    except ColorParseError:
        return fallback
