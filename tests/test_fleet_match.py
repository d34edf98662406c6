"""--match and --host-label: parsed from flags, the config file and the environment, refused in
one sentence with exit 2, and applied to alerts as to queries."""

from __future__ import annotations

import pytest

from vramtop.cli.flags import parser, settings_from
from vramtop.config import ConfigError, load
from vramtop.demo.scenario import Scenario
from vramtop.model import AlertReading
from vramtop.sources.alerts import AlertSource


def settings(*argv: str, env: dict | None = None):
    return settings_from(parser().parse_args(list(argv)), env or {"HOME": "/nonexistent"})


def test_every_operator_from_repeated_flags():
    s = settings(
        "--match",
        "cluster=~eu-.*",
        "--match",
        'team!="search"',
        "--match",
        "env = prod",
        "--match",
        "dc!~us-.*",
        "--host-label",
        "node",
    )
    assert s.match == (
        ("cluster", "=~", "eu-.*"),
        ("team", "!=", "search"),
        ("env", "=", "prod"),
        ("dc", "!~", "us-.*"),
    )
    assert s.host_label == "node"


def test_config_file_and_environment(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('match = ["cluster=~eu-.*", "team=a"]\nhost_label = "node"\n')
    s = load(env={}, config_file=str(path))
    assert s.match == (("cluster", "=~", "eu-.*"), ("team", "=", "a")) and s.host_label == "node"
    env = {"VRAMTOP_MATCH": "cluster=us; team!=b", "VRAMTOP_HOST_LABEL": "host"}
    s = load(env=env, config_file=str(path))
    assert s.match == (("cluster", "=", "us"), ("team", "!=", "b")) and s.host_label == "host"
    # a flag replaces the lower layers, as every other setting does
    s = load(env=env, config_file=str(path), flags={"match": (("dc", "=", "x"),)})
    assert s.match == (("dc", "=", "x"),)


@pytest.mark.parametrize(
    ("value", "sentence"),
    [
        (
            "cluster=~(eu",
            "--match 'cluster=~(eu': bad regular expression: missing ), unterminated subpattern",
        ),
        (
            "cluster!~a(?=b)",
            "--match 'cluster!~a(?=b)': bad regular expression: lookahead is not supported by "
            "Prometheus (RE2)",
        ),
        (
            "clu-ster=eu",
            "--match 'clu-ster=eu': bad label name 'clu-ster' (letters, digits and _, not "
            "starting with a digit)",
        ),
        (
            "cluster",
            "--match 'cluster': not a label matcher (expected LABEL=VALUE, LABEL!=VALUE, "
            "LABEL=~REGEX or LABEL!~REGEX)",
        ),
        (
            "__name__=up",
            "--match '__name__=up': __name__ cannot be matched (vramtop picks the metrics)",
        ),
    ],
)
def test_bad_match_is_one_sentence_and_exit_2(run_vramtop, value, sentence):
    out = run_vramtop("--once", "--match", "team=a", "--match", value, scenario=Scenario())
    assert out.returncode == 2
    assert out.stderr == f"vramtop: {sentence}\n"
    assert out.stdout == ""


def test_bad_match_in_the_file_and_environment_and_a_bad_host_label(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('match = ["a=~x\\\\1"]\n')
    with pytest.raises(ConfigError) as err:
        load(env={}, config_file=str(path))
    assert str(err.value) == (
        f"{path}: key 'match' 'a=~x\\\\1': bad regular expression: invalid group reference 1"
    )
    with pytest.raises(ConfigError) as err:
        load(env={"VRAMTOP_MATCH": "ok=1;b=~x++"})
    assert str(err.value) == (
        "VRAMTOP_MATCH 'b=~x++': bad regular expression: possessive quantifiers are not "
        "supported by Prometheus (RE2)"
    )
    with pytest.raises(ConfigError) as err:
        settings("--host-label", "host name")
    assert str(err.value) == "--host-label must be a label name, like \"node\", got 'host name'"


def alert(name: str, **labels: str) -> AlertReading:
    return AlertReading(name, "warning", "firing", labels={"alertname": name, **labels})


def test_alerts_are_scoped_like_queries_and_kept_without_the_label():
    src = AlertSource(
        None, None, match=(("cluster", "=~", "eu-.*"), ("team", "!=", "search"), ("env", "=", "p"))
    )
    assert src._wanted(alert("a", cluster="eu-west", team="chat", env="p"))
    assert not src._wanted(alert("b", cluster="us-east"))
    assert not src._wanted(alert("c", cluster="eu-1", team="search"))
    assert not src._wanted(alert("d", env="q"))
    # an alert about the whole fleet (no cluster label) is kept, as with --instance
    assert src._wanted(alert("e"))
    # regexes are anchored, as in PromQL
    assert not src._wanted(alert("f", cluster="xeu-west"))
