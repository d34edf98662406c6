"""Themes are data: the shipped TOML files, the user's own, and what a bad file says."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_tui_support import STEPS, ScriptedCollector, frame_at, make_app, run, wait_until
from textual.theme import Theme

from vramtop.config import ConfigError
from vramtop.tui.themes import ThemeError, load_theme_file, load_themes, theme_dirs

REPO_THEMES = Path(__file__).resolve().parent.parent / "themes"


def test_shipped_themes_load_and_use_every_status_colour():
    shipped = sorted(p.stem for p in REPO_THEMES.glob("*.toml"))
    assert shipped == ["vramtop-dark", "vramtop-high-contrast", "vramtop-light", "vramtop-mono"]
    for path in REPO_THEMES.glob("*.toml"):
        theme = load_theme_file(path)
        assert isinstance(theme, Theme) and theme.name == path.stem
        assert theme.error and theme.warning and theme.success and theme.background


def test_user_themes_override_and_bad_files_are_reported(tmp_path: Path):
    user = tmp_path / "vramtop" / "themes"
    user.mkdir(parents=True)
    (user / "mine.toml").write_text('name = "mine"\nprimary = "#FF00FF"\ndark = false\n')
    (user / "dark.toml").write_text('name = "vramtop-dark"\nprimary = "#123456"\n')
    (user / "broken.toml").write_text('name = "broken"\nprimary = "blue-ish"\n')
    (user / "junk.toml").write_text("name = [\n")
    loaded = load_themes({"XDG_CONFIG_HOME": str(tmp_path)})
    assert theme_dirs({"XDG_CONFIG_HOME": str(tmp_path)})[-1] == user
    assert loaded.themes["mine"].primary == "#FF00FF" and not loaded.themes["mine"].dark
    assert loaded.themes["vramtop-dark"].primary == "#123456"  # the user's file wins
    assert "broken" not in loaded.themes
    problems = " | ".join(loaded.problems)
    assert "broken.toml: 'primary' must be a colour" in problems
    assert "junk.toml: not valid TOML" in problems

    app = make_app(ScriptedCollector([frame_at(STEPS)]), tmp_path=tmp_path, theme="mine")
    assert app.theme == "mine"

    async def go():
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: app.frames_received >= 1)
            messages = [n.message for n in app._notifications]
            assert any("broken.toml" in m for m in messages)  # told once, at start

    run(go())


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('primary = "#fff"\n', "'name' must be a non-empty string"),
        ('name = "x"\n', "'primary' is required"),
        ('name = "x"\nprimary = "#fff"\ncolour = "#000"\n', "unknown key 'colour'"),
        ('name = "x"\nprimary = "#fff"\ndark = "yes"\n', "'dark' must be true or false"),
        ('name = "x"\nprimary = "#fff"\n[variables]\na = 1\n', "'variables' must be a table"),
    ],
)
def test_theme_file_errors_are_one_sentence(tmp_path: Path, text: str, error: str):
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(ThemeError, match=error):
        load_theme_file(path)


def test_unknown_theme_flag_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"unknown theme 'nope'.*vramtop-dark"):
        make_app(ScriptedCollector([frame_at(0)]), tmp_path=tmp_path, theme="nope")
    # Textual's own themes work too.
    assert (
        make_app(ScriptedCollector([frame_at(0)]), tmp_path=tmp_path, theme="nord").theme == "nord"
    )
