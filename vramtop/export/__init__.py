"""One Frame as plain text, Markdown or JSON: the same exporters serve --once and the TUI."""

from __future__ import annotations

from vramtop.model import Frame


def render(frame: Frame, fmt: str, color: bool = False) -> str:
    if fmt == "json":
        from vramtop.export import jsonout

        return jsonout.render(frame)
    if fmt == "markdown":
        from vramtop.export import markdown

        return markdown.render(frame)
    from vramtop.export import text

    return text.render(frame, color=color)
