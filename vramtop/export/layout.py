"""The cells and tables every text-like export draws, and how wide a cell may grow."""

from __future__ import annotations

from dataclasses import dataclass, field

from vramtop import clean
from vramtop.records import record

COMMAND_WIDTH = 60
CELL_WIDTH = 80  # any cell: a 10,000-character label must not make a 10,000-column table
NAME_WIDTH = 48  # host and GPU names
MODEL_WIDTH = 72  # Hugging Face names run long: org/Model-70B-Instruct-FP8-dynamic
DETAIL_WIDTH = 200  # a source's sentence, and notes
VRAM_CRITICAL = 0.95  # the monitoring overview's VRAMExhausted threshold


@record
class Cell:
    """A table cell: text already cut to its column, and a style hint."""

    text: str
    style: str | None = None  # "bad", "warn", "good" or "dim": a hint, colour is optional


@dataclass(slots=True)
class Table:
    """A titled table every export format writes in its own way."""

    title: str
    headers: tuple[str, ...]
    rows: list[tuple[Cell, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    empty: str = "none"


def c(text: object, style: str | None = None, columns: int = CELL_WIDTH) -> Cell:
    return Cell(clean.cut(str(text), columns), style)


def note(text: str) -> str:
    return clean.cut(text, DETAIL_WIDTH)
