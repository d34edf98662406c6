"""Textual themes from data files: shipped ones, then the user's, each a TOML file.

Search order (a later file with the same name wins):

1. ``vramtop/themes`` inside the installed package (the wheel force-includes ``themes/``);
2. the repository's top-level ``themes/`` when running from a checkout or an editable install;
3. ``$XDG_CONFIG_HOME/vramtop/themes/*.toml`` (``~/.config`` when unset).

A file holds the fields of :class:`textual.theme.Theme`: ``name``, ``primary`` (required),
``secondary``, ``accent``, ``warning``, ``error``, ``success``, ``foreground``, ``background``,
``surface``, ``panel``, ``boost``, ``dark``, ``luminosity_spread``, ``text_alpha`` and a
``[variables]`` table of extra CSS variables.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path

from textual.color import Color, ColorParseError
from textual.theme import Theme

import vramtop
from vramtop.records import record

DEFAULT_THEME = "vramtop-dark"
NO_COLOR_THEME = "vramtop-mono"
_COLOURS = (
    "primary",
    "secondary",
    "accent",
    "warning",
    "error",
    "success",
    "foreground",
    "background",
    "surface",
    "panel",
    "boost",
)
_NUMBERS = ("luminosity_spread", "text_alpha")


class ThemeError(ValueError):
    """One sentence naming the file and what is wrong with it."""


@record(slots=False)
class LoadedThemes:
    themes: dict[str, Theme]
    problems: tuple[str, ...]  # one sentence per file that was skipped


def theme_dirs(env: Mapping[str, str] | None = None) -> list[Path]:
    env = os.environ if env is None else env
    package = Path(vramtop.__file__).resolve().parent
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", "~"), ".config")
    dirs = [package / "themes", package.parent / "themes"]
    dirs.append(Path(os.path.expanduser(base)) / "vramtop" / "themes")
    seen: list[Path] = []
    for d in dirs:
        if d not in seen:
            seen.append(d)
    return seen


def load_theme_file(path: Path) -> Theme:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as err:
        raise ThemeError(f"{path}: cannot read theme file ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise ThemeError(f"{path}: not valid TOML: {err}") from None
    return theme_from_dict(data, str(path))


def theme_from_dict(data: Mapping[str, object], where: str) -> Theme:
    known = {"name", "dark", "variables", *_COLOURS, *_NUMBERS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ThemeError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ThemeError(f"{where}: 'name' must be a non-empty string")
    values: dict[str, object] = {"name": name.strip()}
    if "primary" not in data:
        raise ThemeError(f"{where}: 'primary' is required")
    for key in _COLOURS:
        if key in data:
            values[key] = _colour(where, key, data[key])
    if "dark" in data:
        if not isinstance(data["dark"], bool):
            raise ThemeError(f"{where}: 'dark' must be true or false")
        values["dark"] = data["dark"]
    for key in _NUMBERS:
        if key in data:
            number = data[key]
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ThemeError(f"{where}: {key!r} must be a number")
            values[key] = float(number)
    variables = data.get("variables", {})
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in variables.items()
    ):
        raise ThemeError(f"{where}: 'variables' must be a table of strings")
    values["variables"] = dict(variables)
    return Theme(**values)  # type: ignore[arg-type]


def _colour(where: str, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ThemeError(f'{where}: {key!r} must be a colour like "#4FB3FF", got {value!r}')
    try:
        Color.parse(value)
    except ColorParseError:
        raise ThemeError(
            f'{where}: {key!r} must be a colour like "#4FB3FF", got {value!r}'
        ) from None
    return value


def load_themes(env: Mapping[str, str] | None = None) -> LoadedThemes:
    themes: dict[str, Theme] = {}
    problems: list[str] = []
    for directory in theme_dirs(env):
        try:
            files = sorted(directory.glob("*.toml"))
        except OSError:
            continue
        for path in files:
            try:
                theme = load_theme_file(path)
            except ThemeError as err:
                problems.append(str(err))
                continue
            themes[theme.name] = theme
    return LoadedThemes(themes, tuple(problems))
