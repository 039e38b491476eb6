"""The README's example session, run as written: the `curl` lines of its restate_sdk
section, against the example services served by hypercorn, on our server and on the
real restate-server 1.7.12."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.endpoints import PyEndpoint
from tests.support.http import Response, request
from tests.support.server import RealRestateServerProcess, RestateServerProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_APP = ROOT / "examples" / "services.py"


def _readme_curls() -> list[list[str]]:
    """The curl commands of the README's "Write services with restate_sdk" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Write services with `restate_sdk`", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", section, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("curl "):
                commands.append(shlex.split(line)[1:])
    return commands


def _run_curl(args: list[str], admin: str, ingress: str, endpoint_url: str) -> Response:
    method, headers, data, url = None, {}, None, ""
    words = iter(args)
    for word in words:
        if word == "-X":
            method = next(words)
        elif word == "-H":
            name, value = next(words).split(":", 1)
            headers[name.strip()] = value.strip()
        elif word == "-d":
            data = next(words)
        else:
            url = word
    url = url.replace("localhost:9070", admin).replace("localhost:8080", ingress)
    url = url if url.startswith("http") else f"http://{url}"
    if data is not None:
        data = data.replace("http://127.0.0.1:9080", endpoint_url)
    body = None if data is None else data.encode()
    return request(
        method or ("POST" if body is not None else "GET"), url, body=body, headers=headers
    )


@pytest.mark.parametrize("kind", ["ours", "real"])
def test_readme_example_session(
    kind: str,
    server: Callable[..., RestateServerProcess],
    real_server: Callable[..., RealRestateServerProcess],
    py_endpoint: Callable[..., PyEndpoint],
) -> None:
    endpoint = py_endpoint(EXAMPLES_APP, name="examples")
    srv = server() if kind == "ours" else real_server()
    admin = srv.admin_url.removeprefix("http://")
    ingress = srv.ingress_url.removeprefix("http://")
    commands = _readme_curls()
    assert len(commands) == 6, commands
    answers = [_run_curl(args, admin, ingress, endpoint.url) for args in commands]
    register, greet, add, run, approve, attach = answers
    assert register.status == 201, register.text()
    assert greet.json() == "Hello, World!"
    assert add.json() == 5
    assert run.status == 202 and run.json()["status"] == "Accepted"
    assert approve.status == 200, approve.text()
    assert attach.status == 200, attach.text()
    assert json.loads(attach.body) == {"status": "completed", "amount": 42}
