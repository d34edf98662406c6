"""Markdown export: a heading with host and UTC time, then tables that paste into a ticket."""

from __future__ import annotations

from vramtop.export.layout import Table
from vramtop.export.tables import tables, title_of
from vramtop.fleet import Rules
from vramtop.links import frame_links
from vramtop.model import Frame

_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|#&"})
# Headers hold a disk path from outside; "#" mid-row is plain text and the "#" column stays "#".
_HEADER = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|&"})


def escape(text: str) -> str:
    """Markdown-inert text: a label like ``[x](y)`` or a pipe cannot reshape the table, and
    ``&lt;`` is shown as written, not as ``<``."""
    return text.translate(_SPECIAL)


def render(
    frame: Frame, rules: Rules | None = None, links: tuple[tuple[str, str], ...] = ()
) -> str:
    out = [f"## {escape(title_of(frame))}", ""]
    for table in tables(frame, rules):
        out += _table(table)
        out.append("")
    out += _links(frame, links)
    return "\n".join(out).rstrip() + "\n"


# In a Markdown link destination these end the link or start another one.
_URL_SPECIAL = str.maketrans({c: f"%{ord(c):02X}" for c in "()<>[]\\ "})


def _links(frame: Frame, templates: tuple[tuple[str, str], ...]) -> list[str]:
    """Dashboards, log searches and runbooks per model, GPU and alert: one line each."""
    found = frame_links(templates, frame)
    if not found:
        return []
    lines = ["### Links", ""]
    for subject, links in found:
        shown = ", ".join(f"[{escape(k.name)}]({k.url.translate(_URL_SPECIAL)})" for k in links)
        lines.append(f"- {escape(subject)}: {shown}")
    return [*lines, ""]


def _table(table: Table) -> list[str]:
    lines = [f"### {table.title}", ""]
    if not table.rows:
        lines.append(f"_{table.empty}_")
    else:
        lines.append("| " + " | ".join(h.translate(_HEADER) for h in table.headers) + " |")
        lines.append("|" + "|".join("---" for _ in table.headers) + "|")
        lines += ["| " + " | ".join(escape(c.text) for c in row) + " |" for row in table.rows]
    if table.notes:
        lines.append("")
        lines += [f"- {escape(n)}" for n in table.notes]
    return lines
