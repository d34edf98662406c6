"""Building PromQL text safely: string and regex literals, selectors, the names a counter may
go by, and fallbacks. Nothing here does I/O; queries.py assembles the queries from these."""

from __future__ import annotations

import re

_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


def quote(value: str) -> str:
    """A PromQL double-quoted string literal for any label value."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def regex_literal(value: str) -> str:
    """A regex matching exactly ``value`` (RE2 is fully anchored), as a PromQL string literal."""
    return quote(_RE2_SPECIAL.sub(r"\\\1", value))


def matcher(label: str, value: str, regex: bool = False) -> str:
    return f"{label}=~{quote(value)}" if regex else f"{label}={quote(value)}"


def instance_selector(
    instance_regex: str | None, match: tuple[tuple[str, str, str], ...] = ()
) -> str:
    """The matchers every query carries: all instances, or those the user chose with
    --instance, and the --match matchers (label, op, value) beside it. ``instance=~".+"`` keeps
    selectors non-empty, so ``x{$sel}`` is always valid."""
    base = matcher("instance", instance_regex or ".+", regex=True)
    return ",".join([base, *(f"{label}{op}{quote(value)}" for label, op, value in match)])


def names_regex(names: list[str] | tuple[str, ...]) -> str:
    return "|".join(_RE2_SPECIAL.sub(r"\\\1", n) for n in names)


def counter_names(name: str) -> tuple[str, ...]:
    """Counters are exported with and without ``_total`` depending on the client library."""
    if name.endswith("_total"):
        return (name, name.removesuffix("_total"))
    return (f"{name}_total", name)


def either(*exprs: str) -> str:
    """The first alternative that has data: fallbacks for renamed metrics, in one query."""
    return " or ".join(f"({e})" for e in exprs) if len(exprs) > 1 else exprs[0]
