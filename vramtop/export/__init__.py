"""One Frame as plain text, Markdown or JSON: the same exporters serve --once and the TUI."""

from __future__ import annotations

from vramtop.fleet import Rules
from vramtop.model import Frame


def render(
    frame: Frame,
    fmt: str,
    color: bool = False,
    rules: Rules | None = None,
    links: tuple[tuple[str, str], ...] = (),
) -> str:
    """``rules``: the user's p95 target and host label, for the Hosts table (default: none).
    ``links``: the ``[links]`` URL templates, listed per model, GPU and alert in Markdown."""
    if fmt == "json":
        from vramtop.export import jsonout

        return jsonout.render(frame, rules)
    if fmt == "markdown":
        from vramtop.export import markdown

        return markdown.render(frame, rules, links)
    from vramtop.export import text

    return text.render(frame, color=color, rules=rules)
