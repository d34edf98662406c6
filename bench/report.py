"""Plain-text tables, printed as each phase ends and kept in bench/results/<time>/report.txt."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

MIB = 2**20


def table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """First column left-aligned, the others right-aligned."""
    cells = [[str(c) for c in head], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]

    def line(r: list[str]) -> str:
        return " | ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    out = [line(cells[0]), "-+-".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f} %"


def ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:.0f} ms"


def mib(n: float | None) -> str:
    return "–" if n is None else f"{n / MIB:.1f} MiB"


def ratio(a: float | None, b: float | None) -> str:
    return "–" if a is None or not b else f"{a / b:.2f}x"


class Report:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")

    def section(self, title: str, body: str, note: str = "") -> None:
        text = f"\n## {title}\n\n{body}\n" + (f"\n{note}\n" if note else "")
        sys.stdout.write(text)
        sys.stdout.flush()
        with self.path.open("a", encoding="utf-8") as f:
            f.write(text)

    def line(self, text: str) -> None:
        print(text, flush=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(text + "\n")
