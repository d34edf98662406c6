"""TLS to Prometheus: verified by default, a private CA through --ca-file, --insecure on request."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from badserver import BadServer

from vramtop.demo.scenario import Scenario

EMPTY = {"status": "success", "data": {"resultType": "vector", "result": []}}


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make the test certificate (Debian package openssl)"
    d: Path = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(d / "key.pem"),
            "-out",
            str(d / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    server = BadServer()
    server.body = EMPTY
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(d / "cert.pem", d / "key.pem")
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    url = server.url.replace("http://", "https://")
    yield url, d / "cert.pem"
    server.close()


def prom_status(out) -> tuple[str, str]:
    doc = json.loads(out.stdout)
    s = next(s for s in doc["sources"] if s["name"] == "prometheus")
    return s["status"], s["detail"]


def test_unknown_ca_is_refused_by_default(run_vramtop, tls_server):
    url, _ = tls_server
    state, detail = prom_status(run_vramtop("--json", "--prometheus", url, scenario=Scenario()))
    assert state == "error" and "certificate verify failed" in detail


def test_ca_file_and_insecure(run_vramtop, tls_server):
    url, cert = tls_server
    ok = run_vramtop("--json", "--prometheus", url, "--ca-file", str(cert), scenario=Scenario())
    assert prom_status(ok)[0] == "ok"
    assert (
        prom_status(run_vramtop("--json", "--prometheus", url, "--insecure", scenario=Scenario()))[
            0
        ]
        == "ok"
    )


def test_missing_ca_file_is_exit_2(run_vramtop, tls_server):
    url, _ = tls_server
    out = run_vramtop("--once", "--prometheus", url, "--ca-file", "/nonexistent.pem")
    assert out.returncode == 2 and "the CA file /nonexistent.pem does not exist" in out.stderr
