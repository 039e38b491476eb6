#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it.
#   - a virtualenv in .venv with the project and its test dependencies
#   - Node 22, the TypeScript SDK, the real restate-server and CLI under .tools/node
#   - nats-server and wrk (Debian's packages) for the cluster tests and the benchmark smokes
# Extra arguments are passed to pytest (e.g. scripts/test.sh tests/unit -x).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

scripts/install-test-deps.sh
# the cluster tests' engine (a three-server NATS JetStream on loopback, Debian's 2.9) and
# wrk for the sends benchmark's smoke run
missing=()
command -v nats-server > /dev/null || missing+=(nats-server)
command -v wrk > /dev/null || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get install -y -qq "${missing[@]}" > /dev/null \
        || { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" > /dev/null; }
fi
# bytecode once, not in every server and endpoint process the tests start
.venv/bin/python -m compileall -q restate_server restate_sdk tests examples > /dev/null

.venv/bin/ruff check .
.venv/bin/ruff format --check .
exec .venv/bin/python -m pytest -q "$@"
