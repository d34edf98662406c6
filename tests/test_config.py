"""Settings layering and the one-sentence, exit-2 rejection of bad configuration."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vramtop.config import ConfigError, load, parse_duration


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_layers_defaults_file_env_flags(tmp_path):
    path = write(tmp_path, 'interval = "5s"\nformat = "markdown"\ngpus = [0, 2]\n')
    env = {"VRAMTOP_FORMAT": "json", "HOME": str(tmp_path)}
    s = load(env=env, config_file=str(path))
    assert (s.interval, s.format, s.gpus) == (5.0, "json", "0,2")
    s = load(env=env, config_file=str(path), flags={"format": "text", "interval": 1.0})
    assert (s.interval, s.format) == (1.0, "text")
    assert load(env={"HOME": str(tmp_path)}).interval == 2.0


def test_xdg_location_and_no_color(tmp_path):
    (tmp_path / "vramtop").mkdir()
    (tmp_path / "vramtop" / "config.toml").write_text("no_color = true\ntimeout = 1.5\n")
    s = load(env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert s.no_color and s.timeout == 1.5 and s.config_file.endswith("config.toml")
    assert load(env={"XDG_CONFIG_HOME": str(tmp_path / "none"), "NO_COLOR": "1"}).no_color


def test_attribution_rules_from_file(tmp_path):
    path = write(
        tmp_path,
        '[[attribution]]\npattern = "yolo"\nmodel = "detector"\n'
        '[[attribution]]\npattern = "^abc"\nmodel = "emb"\nmatch = "container"\n',
    )
    rules = load(env={}, config_file=str(path)).attribution
    assert [(r.model, r.match) for r in rules] == [("detector", "cmdline"), ("emb", "container")]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("interval = ", "not valid TOML"),
        ("intervall = 2", "unknown key 'intervall'"),
        ('interval = "fast"', "key 'interval' must be a duration"),
        ("interval = 0.001", "key 'interval' must be a duration"),
        ('format = "yaml"', "key 'format' must be one of text, markdown, json"),
        ("no_color = 3", "key 'no_color' must be true or false"),
        ('[[attribution]]\npattern = "("\nmodel = "x"', "key 'attribution' must be"),
        ('[[attribution]]\npattern = "x"\nmodel = "y"\nmatch = "gpu"', "key 'attribution'"),
    ],
)
def test_bad_file_names_file_key_and_expectation(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(env={}, config_file=str(path))
    assert str(path) in str(err.value) and needle in str(err.value)


def test_bad_environment_names_the_variable():
    with pytest.raises(ConfigError, match="VRAMTOP_INTERVAL must be"):
        load(env={"VRAMTOP_INTERVAL": "soon"})


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load(env={}, config_file=str(tmp_path / "nope.toml"))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2", 2.0), ("2s", 2.0), ("1.5", 1.5), ("500ms", 0.5), ("1m", 60.0), (3, 3.0)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "-1", "0", "2h", "abc", "nan"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def run_cli(*args, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("VRAMTOP_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "vramtop", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "env", "needle"),
    [
        (["--once", "--interval", "x"], {}, "--interval must be a duration"),
        (["--once", "--gpus", "0,,1"], {}, "empty entry in GPU list"),
        (["--once", "--gpus", "zero"], {}, "neither an index nor a UUID"),
        (["--once", "--format", "yaml"], {}, "invalid choice"),
        (["--bogus"], {}, "unrecognized arguments"),
        (["--once"], {"VRAMTOP_TIMEOUT": "-3"}, "VRAMTOP_TIMEOUT must be"),
        (["--once"], {"CUDA_VISIBLE_DEVICES": "0,,"}, "CUDA_VISIBLE_DEVICES: empty entry"),
    ],
)
def test_cli_bad_input_is_one_sentence_and_exit_2(args, env, needle):
    out = run_cli(*args, env=env)
    assert out.returncode == 2, out.stderr
    assert needle in out.stderr
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("vramtop: ")
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_cli_bad_config_file(tmp_path):
    path = write(tmp_path, "interval = [1]\n")
    out = run_cli("--once", "--config", str(path))
    assert out.returncode == 2
    assert (
        out.stderr == f"vramtop: {path}: key 'interval' must be a duration of at least 0.1 s, "
        'like 2 or "2s", got [1]\n'
    )


@pytest.mark.parametrize(
    "key", ["interval", "timeout", "format", "gpus", "no_color", "attribution"]
)
@pytest.mark.parametrize(
    "value", ["[1]", "{ a = 1 }", "true", "-5", "1e400", '"\\u0000"', "[[1]]", "[{ pattern = 1 }]"]
)
def test_any_value_of_any_type_is_accepted_or_rejected_cleanly(tmp_path, key, value):
    path = write(tmp_path, f"{key} = {value}\n")
    try:
        load(env={}, config_file=str(path))
    except ConfigError as err:
        assert f"key {key!r}" in str(err)


def test_targets_default_to_the_kpis_and_can_be_changed(tmp_path):
    assert load(env={}).targets.api_p95_seconds == 0.2
    path = write(tmp_path, "[targets]\ninference_p95_seconds = 0.05\nqueue_length_warning = 10\n")
    t = load(env={}, config_file=str(path)).targets
    assert (t.inference_p95_seconds, t.queue_length_warning, t.error_ratio) == (0.05, 10.0, 0.001)
    with pytest.raises(ConfigError, match="key 'targets' must be a table of non-negative numbers"):
        load(env={}, config_file=str(write(tmp_path, "[targets]\nlatency = 1\n")))


def test_the_readme_config_example_is_valid():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("# ~/.config/vramtop/config.toml", 1)[1].split("\n", 1)[1]
    block = block.split("```", 1)[0]
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"readme-config-{os.getpid()}.toml"
    path.write_text(block)
    try:
        s = load(env={}, config_file=str(path))
    finally:
        path.unlink()
    assert s.prometheus_url and s.headers == (("X-Scope-OrgID", "team-a"),)
    assert [r.model for r in s.attribution] == ["face-detector", "embedder"]
