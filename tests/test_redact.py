"""Secret masking by rule: command lines (also inside one sh -c string), URLs of any shape, and
messages from servers and libraries."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import wait_for_exec

from vramtop import redact
from vramtop.attribution import Attributor
from vramtop.sources.procs import ProcessInspector

M = redact.MASK

# (argv, what must be shown): masked members of the class and values that must survive.
ARGV = [
    # options whose name suggests a credential, value in the next element or after "="
    (["vllm", "serve", "m", "--api-key", "sk-123"], ["vllm", "serve", "m", "--api-key", M]),
    (["srv", "--key", "sk-zzzz"], ["srv", "--key", M]),
    (["srv", "--hf-token=hf_abc", "--model", "x"], ["srv", "--hf-token=***", "--model", "x"]),
    (["srv", "--admin-api-key", "plain"], ["srv", "--admin-api-key", M]),
    (["srv", "--auth", "alice"], ["srv", "--auth", M]),
    (["srv", "--db-password=p@ss w"], ["srv", "--db-password=***"]),
    (["tgi", "--password", "--model", "m"], ["tgi", "--password", "--model", "m"]),
    # NAME=value, alone, behind --env= or -e, and quoted inside one shell string
    (
        ["env", "HF_TOKEN=hf_abc", "OPENAI_API_KEY=sk"],
        ["env", "HF_TOKEN=***", "OPENAI_API_KEY=***"],
    ),
    (["docker", "run", "--env=HF_TOKEN=hf_xyz", "i"], ["docker", "run", "--env=HF_TOKEN=***", "i"]),
    (["docker", "run", "-e", "HF_TOKEN=hf_xyz", "i"], ["docker", "run", "-e", "HF_TOKEN=***", "i"]),
    (["env", "PGPASSWORD=hunter2", "MYSQL_PWD=x1"], ["env", "PGPASSWORD=***", "MYSQL_PWD=***"]),
    (["env", "AWS_SECRET_ACCESS_KEY=a/b+c"], ["env", "AWS_SECRET_ACCESS_KEY=***"]),
    (
        ["sh", "-c", "exec vllm serve m --api-key sk-abc && echo"],
        ["sh", "-c", "exec vllm serve m --api-key *** && echo"],
    ),
    (
        ["sh", "-c", "docker run -e 'OPENAI_API_KEY=sk-abcdefghijkl' img"],
        ["sh", "-c", "docker run -e 'OPENAI_API_KEY=***' img"],
    ),
    (
        ["bash", "-lc", "HF_TOKEN=hf_abcdef python serve.py --port 8000"],
        ["bash", "-lc", "HF_TOKEN=*** python serve.py --port 8000"],
    ),
    (
        ["x", "--config", '{"api_key": "abc", "m": "n"}'],
        ["x", "--config", '{"api_key": "***", "m": "n"}'],
    ),
    # headers and authorization schemes
    (["curl", "-H", "Authorization: Bearer abc.def"], ["curl", "-H", "Authorization: ***"]),
    (["curl", "--header", "X-API-Key:abc123"], ["curl", "--header", "X-API-Key: ***"]),
    (
        ["sh", "-c", "curl -H 'X-API-Key:abc123' -H \"Authorization: Basic Zm9vOmJhcg==\" u"],
        ["sh", "-c", "curl -H 'X-API-Key: ***' -H \"Authorization: ***\" u"],
    ),
    (["srv", "--auth-header", "Bearer tok123"], ["srv", "--auth-header", M]),
    (["curl", "-u", "alice:secret", "http://x"], ["curl", "-u", "alice:***", "http://x"]),
    # well-known token prefixes wherever they sit
    (["x", "ghp_abcdefghijklmnop1234", "glpat-abcdefghijkl"], ["x", M, M]),
    (["x", "AKIAABCDEFGHIJKLMNOP", "xoxb-123456789-abc"], ["x", M, M]),
    (["x", "--x=sk-ant-abcdefghijk", "pos:sk-proj-abcdefghij"], ["x", "--x=***", "pos:***"]),
    (["x", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_abc"], ["x", M]),
    (["x", "AIzaSyA1234567890abcdefghijkl"], ["x", M]),
    # URL userinfo of any shape
    (["w", "--db", "postgres://u:pw@db:5432/x"], ["w", "--db", "postgres://u:***@db:5432/x"]),
    (["w", "http://alice:pw/x@host/p"], ["w", "http://alice:***@host/p"]),
    (["w", "https://ghp_abcdefghij1234@github.com/o/r"], ["w", "https://***@github.com/o/r"]),
    (["redis-cli", "-u", "alice:pw@redis:6379"], ["redis-cli", "-u", "alice:***@redis:6379"]),
    # must NOT be masked: counts, paths, models and plain options
    (["python", "-m", "x", "--max-tokens", "5"], ["python", "-m", "x", "--max-tokens", "5"]),
    (
        ["vllm", "serve", "--model", "meta-llama/Llama-3.1-8B", "--max-num-batched-tokens", "8192"],
        ["vllm", "serve", "--model", "meta-llama/Llama-3.1-8B", "--max-num-batched-tokens", "8192"],
    ),
    (
        [
            "x",
            "--served-model-name",
            "key-value-store",
            "--tokenizer",
            "t",
            "--kv-cache-dtype",
            "a",
        ],
        [
            "x",
            "--served-model-name",
            "key-value-store",
            "--tokenizer",
            "t",
            "--kv-cache-dtype",
            "a",
        ],
    ),
    (
        ["x", "--ssl-keyfile", "/k.pem", "--api-key-file", "/run/k", "--disable-log-requests"],
        ["x", "--ssl-keyfile", "/k.pem", "--api-key-file", "/run/k", "--disable-log-requests"],
    ),
    (
        ["x", "--session-len", "4096", "--tokenizer-mode", "auto", "TOKENIZERS_PARALLELISM=false"],
        ["x", "--session-len", "4096", "--tokenizer-mode", "auto", "TOKENIZERS_PARALLELISM=false"],
    ),
    (
        ["tritonserver", "--model-repository=/models", "--http-port", "8000", "http://h:9/x"],
        ["tritonserver", "--model-repository=/models", "--http-port", "8000", "http://h:9/x"],
    ),
    (
        ["x", "--basic-auth-user", "alice", "-H", "X-Scope-OrgID: t"],
        ["x", "--basic-auth-user", "alice", "-H", "X-Scope-OrgID: t"],
    ),
    (
        ["python", "-m", "sklearn", "sk-learn", "hf_x"],
        ["python", "-m", "sklearn", "sk-learn", "hf_x"],
    ),
]


@pytest.mark.parametrize(("args", "shown"), ARGV)
def test_command_lines_are_masked_by_rule(args, shown):
    assert list(redact.argv(args)) == shown


URLS = [
    "http://alice:pw/x@host",
    "http://alice:p#w@host",
    "http://alice:p?w@host/path?token=x",
    "http://alice:p@ss@host",
    "HTTPS://alice:pw@host:9090/x",
    "alice:pw@host:9090",
    "http//alice:pw@host",
    "http:/alice:pw@host",
    "http://alice:p w@host",
    "http://alice:pw",
    "ftp://alice:pw@host",
    "http://alice:pw@",
]


@pytest.mark.parametrize("value", URLS)
def test_urls_of_any_shape_lose_their_password(value):
    shown = redact.url(value)
    assert "pw" not in shown and "p#w" not in shown and "token=x" not in shown
    if "@" in value:
        assert "alice" not in shown


def test_a_url_keeps_what_is_useful():
    assert redact.url("https://u:p@prom.example:9090/api/?q=1#f") == "https://prom.example:9090/api"
    assert redact.url("http://[::1]:9090/") == "http://[::1]:9090"


@pytest.mark.parametrize(
    ("message", "secret"),
    [
        ('{"headers": {"Authorization": "Bearer abcdef123"}}', "abcdef123"),
        ("echo: authorization: Bearer xyz123\nhost: a", "xyz123"),
        ("'authorization': 'Basic YWxpY2U6cHc='", "YWxpY2U6cHc="),
        ("failed for http://bob:hunter2@10.0.0.1:9090/x", "hunter2"),
        ("got X-Api-Key: k-77 from client", "k-77"),
        ("password = hunter2", "hunter2"),
        ("bad key sk-proj-abcdefghij in request", "sk-proj-abcdefghij"),
    ],
)
def test_text_masks_secrets_in_messages(message, secret):
    assert secret not in redact.text(message)


def test_a_remembered_secret_is_masked_inside_a_longer_message():
    redact.remember("s3cr3t-value-x")
    shown = redact.text("upstream said: unknown credential s3cr3t-value-xyz for user")
    assert "s3cr3t-value-x" not in shown and "upstream said" in shown


@pytest.mark.parametrize(
    "message",
    [
        "refused access (HTTP 401): check the token or password",
        "invalid token provided",
        "Token expired",
        "model sk-learn not found",
        "max-num-batched-tokens=8192",
    ],
)
def test_text_leaves_ordinary_messages_alone(message):
    assert redact.text(message) == message


def test_cut_bounds_echoed_values():
    assert redact.cut("x" * 500) == "x" * 199 + "…"
    assert redact.cut("short") == "short"


def test_a_real_process_shows_its_command_masked():
    """A real child whose command line carries secrets in the shapes containers use."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(30)",
            "--model",
            "meta-llama/Llama-3.1-8B",
            "--env=HF_TOKEN=hf_abcdefgh",
            "sh -c 'vllm serve --api-key sk-abc'",
            "--key",
            "k-secret-1",
        ]
    )
    wait_for_exec(child, ["--key", "k-secret-1"])
    try:
        info = ProcessInspector().describe(child.pid)
        command = info.command or ""
        for secret in ("hf_abcdefgh", "sk-abc", "k-secret-1"):
            assert secret not in command
        assert "meta-llama/Llama-3.1-8B" in command
        assert Attributor().attribute(info) == ("meta-llama/Llama-3.1-8B", "cmdline")
    finally:
        child.kill()
        child.wait()


def test_hostile_text_is_masked_in_linear_time():
    """Text from a hostile server is masked whole; the regexes are bounded, so a long body
    that once took quadratic time (seconds for 20 kB) returns at once."""
    import time

    start = time.monotonic()
    for unit in ("a.", "http://", "a-", "http://a:", "-a=b ", '"a":', "Bearer "):
        body = unit * (40_000 // len(unit))
        assert len(redact.text(body)) > 0
    assert time.monotonic() - start < 20  # generous: the quadratic version took minutes
    secret = "http://u:" + "p" * 900 + "@h"
    assert "ppp" not in redact.text(secret)
