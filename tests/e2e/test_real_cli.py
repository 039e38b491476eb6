"""The real `restate` CLI 1.7.12 against our admin API (the commands it needs no SQL for)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support.endpoints import PyEndpoint
from tests.support.node import NodeTools
from tests.support.server import RestateServerProcess


def test_cli_registers_and_lists(
    tools: NodeTools,
    tmp_path: Path,
    server: Callable[..., RestateServerProcess],
    py_endpoint: Callable[..., PyEndpoint],
) -> None:
    endpoint = py_endpoint()
    srv = server()
    env = {
        **os.environ,
        "RESTATE_ADMIN_URL": srv.admin_url,
        "RESTATE_INGRESS_URL": srv.ingress_url,
        "HOME": str(tmp_path),
        "NO_COLOR": "1",
    }

    def cli(*args: str) -> str:
        done = subprocess.run(
            [str(tools.restate_cli), *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    assert "is healthy" in cli("whoami")
    cli("deployments", "register", "--yes", endpoint.url)
    assert "Greeter" in cli("deployments", "list")
    listed = cli("services", "list")
    assert "Greeter" in listed and "Counter" in listed
    described = cli("services", "describe", "Greeter")
    assert "greet" in described and "Bidirectional Stream" in described
    assert srv.call("/Greeter/greet", "CLI").json() == "Hello, CLI!"
