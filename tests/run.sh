#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian machine, then lint and run the whole suite.
# Usage: bash tests/run.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests start or build with (real components, never mocks).
need=()
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v tmux >/dev/null || need+=(tmux)
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need+=(prometheus-alertmanager)
command -v prometheus-node-exporter >/dev/null || need+=(prometheus-node-exporter)
command -v victoria-metrics >/dev/null || need+=(victoria-metrics)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# Python packages, pinned by constraints.txt so a new release cannot turn CI red overnight.
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'

.venv/bin/ruff check .
.venv/bin/ruff format --check .
# Files spread over up to 4 workers (each starts its own servers; a file's tests stay together, so
# a module's fixtures start once): the suite is mostly waiting on servers and child processes.
.venv/bin/python -m pytest -n auto --maxprocesses=4 --dist loadfile "$@"
