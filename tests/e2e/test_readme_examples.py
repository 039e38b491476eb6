"""The README's example session, run as written: the `curl` lines of its restate_sdk
section, against the example services served by hypercorn, on our server and on the
real restate-server 1.7.12."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.endpoints import PyEndpoint
from tests.support.readme import readme_curls, run_curl
from tests.support.server import RealRestateServerProcess, RestateServerProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_APP = ROOT / "examples" / "services.py"


@pytest.mark.parametrize("kind", ["ours", "real"])
def test_readme_example_session(
    kind: str,
    server: Callable[..., RestateServerProcess],
    real_server: Callable[..., RealRestateServerProcess],
    py_endpoint: Callable[..., PyEndpoint],
) -> None:
    endpoint = py_endpoint(EXAMPLES_APP, name="examples")
    srv = server() if kind == "ours" else real_server()
    addresses = {
        "localhost:9070": srv.admin_url.removeprefix("http://"),
        "localhost:8080": srv.ingress_url.removeprefix("http://"),
        "http://127.0.0.1:9080": endpoint.url,
    }
    commands = readme_curls("Write services with `restate_sdk`")
    assert len(commands) == 6, commands
    answers = [run_curl(args, addresses) for args in commands]
    register, greet, add, run, approve, attach = answers
    assert register.status == 201, register.text()
    assert greet.json() == "Hello, World!"
    assert add.json() == 5
    assert run.status == 202 and run.json()["status"] == "Accepted"
    assert approve.status == 200, approve.text()
    assert attach.status == 200, attach.text()
    assert json.loads(attach.body) == {"status": "completed", "amount": 42}
