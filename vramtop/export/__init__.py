"""One Frame as plain text, Markdown or JSON: the same exporters serve --once and the TUI."""

from __future__ import annotations

from types import ModuleType

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
    module = module_for(fmt)
    if fmt == "json":
        return module.render(frame, rules)
    if fmt == "markdown":
        return module.render(frame, rules, links)
    return module.render(frame, color=color, rules=rules)


def module_for(fmt: str) -> ModuleType:
    """The exporter of ``fmt``, imported on first use (--once imports it while it collects)."""
    if fmt == "json":
        from vramtop.export import jsonout

        return jsonout
    if fmt == "markdown":
        from vramtop.export import markdown

        return markdown
    from vramtop.export import text

    return text
