"""Settings layering and the one-sentence, exit-2 rejection of bad configuration."""

import http.server
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

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


@pytest.mark.parametrize("text", ["", "-1", "0", "2h", "abc", "nan", "9" * 400, 1e308, "1e9"])
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


def test_per_model_p95_targets_are_globs_first_match_wins(tmp_path):
    text = (
        "[targets]\ninference_p95_seconds = 0.05\n"
        '[targets.model_p95_seconds]\n"llama-3.1-70b" = 5\n"llama-*" = 2.5\n"Qwen/*" = 1\n'
    )
    t = load(env={}, config_file=str(write(tmp_path, text))).targets
    assert t.model_p95_seconds == (("llama-3.1-70b", 5.0), ("llama-*", 2.5), ("Qwen/*", 1.0))
    assert [t.p95_for(m) for m in ("llama-3.1-70b", "llama-3.1-8b", "Qwen/Qwen2.5-7B", "yolo")] == [
        5.0,
        2.5,
        1.0,
        0.05,
    ]
    assert t.p95_for("LLAMA-3") == 0.05, "case matters, as in model names"
    for bad in ('"llama-*" = "fast"', '"llama-*" = -1', '"llama-*" = true'):
        path = write(tmp_path, f"[targets.model_p95_seconds]\n{bad}\n")
        with pytest.raises(ConfigError, match="model_p95_seconds: a table of model-name globs"):
            load(env={}, config_file=str(path))
    path = write(tmp_path, "[targets]\nmodel_p95_seconds = 3\n")
    with pytest.raises(ConfigError, match="key 'targets' must be a table"):
        load(env={}, config_file=str(path))


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


# -- secrets and config input (issue 15) ------------------------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A Prometheus stand-in on loopback that records the Authorization header it gets."""

    seen: ClassVar[list[str | None]] = []

    def do_GET(self) -> None:
        type(self).seen.append(self.headers.get("Authorization"))
        body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def prom():
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def cli(tmp_path, *args, env=None):
    base = {**(env or {}), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    return run_cli("--once", "--timeout", "3s", *args, env=base)


def one_sentence(out, code=2):
    assert out.returncode == code, out.stderr
    assert out.stderr.startswith("vramtop: ") and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"tok-part1\ntok-part2\n", "line break"),
        (b"tok-part1\rtok-part2", "line break"),
        (b"tok-part1\ttok-part2", "control character"),
        (b"tok-part1 tok-part2", "a space"),
        (b"tok-part1\xfftok-part2", "is not UTF-8 text"),
        ("tok-part1\u00e9tok-part2".encode(), "outside printable ASCII"),
        ("tok-part1\u202etok-part2".encode(), "outside printable ASCII"),
    ],
)
def test_a_bad_token_file_is_one_sentence_naming_the_file(tmp_path, prom, content, needle):
    path = tmp_path / "token"
    path.write_bytes(content)
    out = cli(tmp_path, "--prometheus", prom, "--bearer-token-file", str(path))
    one_sentence(out)
    assert needle in out.stderr and str(path) in out.stderr
    assert "tok-part" not in out.stdout + out.stderr
    assert _Recorder.seen == []  # refused before any request


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("VRAMTOP_BEARER_TOKEN", "tok-part1\ntok-part2"),
        ("VRAMTOP_BEARER_TOKEN", "tok-part1\ttok-part2"),
        ("VRAMTOP_BEARER_TOKEN", "tok-part1\u00a0tok-part2"),
        ("VRAMTOP_BASIC_AUTH_PASSWORD", "tok-part1\r\ntok-part2"),
    ],
)
def test_a_bad_secret_in_the_environment_names_the_variable(tmp_path, prom, var, value):
    out = cli(tmp_path, "--prometheus", prom, "--basic-auth-user", "u", env={var: value})
    one_sentence(out)
    assert var in out.stderr and "tok-part" not in out.stdout + out.stderr


def test_a_token_that_is_not_utf8_in_the_environment(tmp_path, prom):
    env = {k.encode(): v.encode() for k, v in os.environ.items() if not k.startswith("VRAMTOP_")}
    env[b"VRAMTOP_BEARER_TOKEN"] = b"tok-part1\xfftok-part2"
    env[b"XDG_CONFIG_HOME"] = str(tmp_path).encode()
    out = subprocess.run(
        [sys.executable, "-m", "vramtop", "--once", "--prometheus", prom],
        capture_output=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 2 and out.stderr.count(b"\n") == 1
    assert b"VRAMTOP_BEARER_TOKEN" in out.stderr and b"tok-part" not in out.stdout + out.stderr


def test_a_bad_password_file_names_the_file(tmp_path, prom):
    path = tmp_path / "pw"
    path.write_bytes(b"tok-part1\ntok-part2")
    out = cli(tmp_path, "--prometheus", prom, "--basic-auth-user", "u",
              "--basic-auth-password-file", str(path))  # fmt: skip
    one_sentence(out)
    assert str(path) in out.stderr and "tok-part" not in out.stdout + out.stderr


@pytest.mark.parametrize("content", [b"", b"\n", b"  \t \n"])
def test_an_empty_token_file_is_a_warning_and_no_token_is_sent(tmp_path, prom, content):
    path = tmp_path / "token"
    path.write_bytes(content)
    out = cli(tmp_path, "--prometheus", prom, "--bearer-token-file", str(path))
    assert out.returncode == 0, out.stderr
    assert out.stderr == (
        f"vramtop: warning: {path}: the bearer token is empty; requests go without a bearer token\n"
    )
    assert _Recorder.seen and set(_Recorder.seen) == {None}


def test_a_good_token_is_sent_and_never_shown(tmp_path, prom):
    path = tmp_path / "token"
    path.write_text("good-token-123\n")
    out = cli(tmp_path, "--prometheus", prom, "--bearer-token-file", str(path), "--json")
    assert out.returncode == 0 and out.stderr == ""
    assert set(_Recorder.seen) == {"Bearer good-token-123"}
    assert "good-token-123" not in out.stdout


def test_a_token_from_a_pipe_is_read_and_a_pipe_with_no_writer_is_bounded(tmp_path, prom):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", f"printf 'piped-token-1\\n' > {fifo}"])
    out = cli(tmp_path, "--prometheus", prom, "--bearer-token-file", str(fifo))
    writer.wait(timeout=20)
    assert out.returncode == 0, out.stderr
    assert set(_Recorder.seen) == {"Bearer piped-token-1"}
    lonely = tmp_path / "lonely"
    os.mkfifo(lonely)
    out = cli(tmp_path, "--prometheus", prom, "--bearer-token-file", str(lonely))
    one_sentence(out)
    assert f"cannot read the bearer token file {lonely}: nothing came within 2 s" in out.stderr


@pytest.mark.parametrize(
    ("header", "needle"),
    [
        ("X-A: b\r\nInjected: 1", "'X-A', whose value holds a line break"),
        ("X: \u00e9", "'X', whose value holds a character outside printable ASCII"),
        ("X-Api-Key: tok-part1\ttok-part2", "'X-Api-Key', whose value holds a line break, tab"),
        ("Authorization: Bearer tok-part1\x1b[2Jtok-part2", "'Authorization', whose value"),
        ("X A: tok-part1", "--header must be 'NAME: VALUE' with a name of letters"),
        ("X-Lonely", "--header must be 'NAME: VALUE', got header 'X-Lonely' with no value"),
    ],
)
def test_a_bad_header_flag_names_the_header_never_the_value(tmp_path, header, needle):
    out = cli(tmp_path, "--prometheus", "http://127.0.0.1:9", "--header", header)
    one_sentence(out)
    assert out.stderr.startswith("vramtop: --header ") and needle in out.stderr
    assert "tok-part" not in out.stderr and "Injected" not in out.stderr


def test_a_bad_header_in_the_config_names_file_key_and_header(tmp_path):
    path = write(tmp_path, '[headers]\nAuthorization = "Bearer tok-part1\\ntok-part2"\n')
    with pytest.raises(ConfigError) as err:
        load(env={}, config_file=str(path))
    assert str(err.value).startswith(f"{path}: key 'headers' names header 'Authorization'")
    assert "tok-part" not in str(err.value)


def test_credential_headers_are_remembered_and_masked_in_messages(tmp_path):
    from vramtop import redact

    path = write(tmp_path, '[headers]\nX-Api-Key = "remembered-key-1"\nX-Org = "team-a"\n')
    assert load(env={}, config_file=str(path)).headers == (
        ("X-Api-Key", "remembered-key-1"),
        ("X-Org", "team-a"),
    )
    assert redact.text("server said remembered-key-1!") == "server said ***!"
    assert redact.text("org team-a") == "org team-a"  # not a credential: not remembered


PASSWORD_SHAPES = [
    "http://alice:pa55/w0rd@127.0.0.1:9",
    "http://alice:pa55#w0rd@127.0.0.1:9",
    "http://alice:pa55?w0rd@127.0.0.1:9/p?token=t0ken",
    "http://alice:pa55@w0rd@127.0.0.1:9",
    "HTTPS://alice:pa55/w0rd@127.0.0.1:9",
    "alice:pa55w0rd@127.0.0.1:9",
    "http//alice:pa55w0rd@127.0.0.1:9",
    "ftp://alice:pa55w0rd@127.0.0.1:9",
    "http://alice:pa55 w0rd@127.0.0.1:9",
    "http://alice:pa55w0rd",
    "http://alice:pa55\nw0rd@127.0.0.1:9",
]


def _no_password(text):
    for part in ("pa55", "w0rd", "t0ken"):
        assert part not in text, text


@pytest.mark.parametrize("url", PASSWORD_SHAPES)
@pytest.mark.parametrize(
    "where", ["prometheus_url", "alertmanager_url", "scrape", "VRAMTOP_PROMETHEUS_URL",
              "VRAMTOP_SCRAPE", "VRAMTOP_ALERTMANAGER_URL", "file", "file-list"],
)  # fmt: skip
def test_a_url_error_never_shows_the_password(tmp_path, url, where):
    env, flags, config = {}, {}, None
    if where.startswith("VRAMTOP_"):
        env[where] = url
    elif where.startswith("file"):
        value = f"[{json.dumps(url)}]" if where == "file-list" else json.dumps(url)
        key = "scrape" if where == "file-list" else "prometheus_url"
        config = str(write(tmp_path, f"{key} = {value}\n"))
    else:
        from vramtop.config import check_flag

        try:
            check_flag(where, f"--{where}", [url] if where == "scrape" else url)
        except ConfigError as err:
            _no_password(str(err))
        return
    try:
        load(env=env, config_file=config, flags=flags)
    except ConfigError as err:
        _no_password(str(err))


@pytest.mark.parametrize("url", PASSWORD_SHAPES[:4] + PASSWORD_SHAPES[5:7] + PASSWORD_SHAPES[9:])
def test_the_cli_never_shows_a_url_password(tmp_path, url):
    out = cli(tmp_path, "--prometheus", url, "--json", "--timeout", "1s")
    assert out.returncode in (0, 2) and "Traceback" not in out.stderr
    _no_password(out.stdout + out.stderr)


@pytest.mark.parametrize(
    ("args", "env", "config"),
    [
        (["--interval", "9" * 5000], {}, None),
        ([], {"VRAMTOP_PROFILE": "x!" * 5000}, None),
        ([], {}, f'instance = "{"(" * 5000}"\n'),
        ([], {}, f'[[attribution]]\npattern = "{"(" * 5000}"\nmodel = "m"\n'),
        (["--prometheus", "http://" + "h" * 5000 + ":x"], {}, None),
    ],
)
def test_an_echoed_value_is_cut_to_about_200_characters(tmp_path, args, env, config):
    if config is not None:
        args = [*args, "--config", str(write(tmp_path, config))]
    out = cli(tmp_path, *args, env=env)
    one_sentence(out)
    assert len(out.stderr) < 500 and "…" in out.stderr  # the sentence + ~200 echoed


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
@pytest.mark.parametrize("via", ["--config", "VRAMTOP_CONFIG"])
def test_a_config_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path, kind, via):
    path = {"fifo": tmp_path / "fifo", "directory": tmp_path, "device": Path("/dev/zero")}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    args, env = ([via, str(path)], {}) if via == "--config" else ([], {via: str(path)})
    out = cli(tmp_path, *args, env=env)  # run_cli's timeout bounds a hang (the bug: forever)
    one_sentence(out)
    assert f"{path}: cannot read config file: it is " in out.stderr


def test_config_dev_null_means_no_file_layer(tmp_path):
    assert load(env={}, config_file=os.devnull).interval == 2.0


@pytest.mark.parametrize(
    "content", [b'interval = "\xff"\n', b"\xfe\xff\x00i\x00n", b"# \xe9t\xe9\n"]
)
def test_a_config_file_that_is_not_utf8_is_one_sentence(tmp_path, content):
    path = tmp_path / "config.toml"
    path.write_bytes(content)
    out = cli(tmp_path, "--config", str(path))
    one_sentence(out)
    assert f"{path}: config file is not UTF-8 text" in out.stderr


def test_an_unknown_theme_is_blamed_on_the_layer_it_came_from(tmp_path):
    from vramtop.tui.factory import pick_theme

    path = write(tmp_path, 'theme = "no-such-theme"\n')
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    cases = [
        (load(env=env, config_file=str(path)), f"{path}: key 'theme': unknown theme"),
        (load(env={**env, "VRAMTOP_THEME": "nope"}, config_file=str(path)), "VRAMTOP_THEME:"),
        (load(env=env, config_file=str(path), flags={"theme": "nope"}), "--theme: unknown"),
    ]
    for settings, start in cases:
        with pytest.raises(ConfigError) as err:
            pick_theme(settings, settings.theme, env)
        assert str(err.value).startswith(start)


# -- read-only (issue 13) -------------------------------------------------------------------


def test_readonly_from_file_environment_or_flag(tmp_path):
    home = {"HOME": str(tmp_path)}
    assert load(env=home).readonly is False
    path = write(tmp_path, "readonly = true\n")
    assert load(env=home, config_file=str(path)).readonly is True
    assert load(env={**home, "VRAMTOP_READONLY": "1"}).readonly is True
    off = {**home, "VRAMTOP_READONLY": "no"}
    assert load(env=off, config_file=str(path)).readonly is False  # env over the file
    assert load(env=off, flags={"readonly": True}).readonly is True  # the flag over both
    with pytest.raises(ConfigError, match="VRAMTOP_READONLY must be true or false, got 'maybe'"):
        load(env={**home, "VRAMTOP_READONLY": "maybe"})
    bad = write(tmp_path, 'readonly = "sometimes"\n')
    with pytest.raises(ConfigError, match="key 'readonly' must be true or false"):
        load(env=home, config_file=str(bad))


def test_readonly_flag_reaches_the_settings():
    from vramtop.cli.flags import parser, settings_from

    env = {"XDG_CONFIG_HOME": "/nonexistent"}
    assert settings_from(parser().parse_args(["--readonly"]), env).readonly is True
    assert settings_from(parser().parse_args([]), env).readonly is False
    assert settings_from(parser().parse_args([]), {**env, "VRAMTOP_READONLY": "true"}).readonly


def test_remote_interval_layers_and_its_flag(tmp_path):
    from vramtop.cli.flags import parser, settings_from

    assert load(env={"HOME": str(tmp_path)}).remote_interval == 5.0
    path = write(tmp_path, 'remote_interval = "15s"\n')
    assert load(env={}, config_file=str(path)).remote_interval == 15.0
    env = {"VRAMTOP_REMOTE_INTERVAL": "30s", "HOME": str(tmp_path)}
    assert load(env=env, config_file=str(path)).remote_interval == 30.0
    args = parser().parse_args(["--remote-interval", "1s"])
    assert settings_from(args, env).remote_interval == 1.0
    with pytest.raises(ConfigError, match="VRAMTOP_REMOTE_INTERVAL must be"):
        load(env={"VRAMTOP_REMOTE_INTERVAL": "often"})
