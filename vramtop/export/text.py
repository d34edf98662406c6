"""Plain-text export: aligned columns, ANSI colour only when asked for."""

from __future__ import annotations

from vramtop import clean
from vramtop.export.layout import Cell, Table
from vramtop.export.tables import tables, title_of
from vramtop.fleet import Rules
from vramtop.model import Frame

_ANSI = {
    "bad": "\x1b[31;1m",
    "warn": "\x1b[33m",
    "good": "\x1b[32m",
    "dim": "\x1b[2m",
    "head": "\x1b[1m",
}
_RESET = "\x1b[0m"


def render(frame: Frame, color: bool = False, rules: Rules | None = None) -> str:
    paint = _painter(color)
    out = [paint(title_of(frame), "head"), ""]
    for table in tables(frame, rules):
        out += _table(table, paint)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _painter(color: bool):  # type: ignore[no-untyped-def]
    def paint(text: str, style: str | None) -> str:
        if not color or not style or style not in _ANSI:
            return text
        return f"{_ANSI[style]}{text}{_RESET}"

    return paint


def _table(table: Table, paint) -> list[str]:  # type: ignore[no-untyped-def]
    lines = [paint(table.title, "head")]
    if not table.rows:
        return [*lines, f"  ({table.empty})", *(f"  {n}" for n in table.notes)]
    widths = [len(h) for h in table.headers]
    for row in table.rows:
        widths = [max(w, clean.width(cell.text)) for w, cell in zip(widths, row, strict=True)]
    heads = [Cell(h, "dim") for h in table.headers]
    for row in (heads, *table.rows):
        cells = [
            paint(_pad(cell.text, w) if i < len(row) - 1 else cell.text, cell.style)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append(("  " + "  ".join(cells)).rstrip())
    lines += [f"  {note}" for note in table.notes]
    return lines


def _pad(text: str, columns: int) -> str:
    return text + " " * (columns - clean.width(text))
