"""The real `restate` CLI 1.7.12 against our server with an official-Python-SDK endpoint
(the TS services go through every command in test_real_cli_parity.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tests.support.endpoints import PyEndpoint
from tests.support.node import NodeTools
from tests.support.real_cli import RealCli
from tests.support.server import RestateServerProcess


def test_cli_registers_and_lists(
    tools: NodeTools,
    tmp_path: Path,
    server: Callable[..., RestateServerProcess],
    py_endpoint: Callable[..., PyEndpoint],
) -> None:
    endpoint = py_endpoint()
    srv = server()
    cli = RealCli(tools, srv, tmp_path)

    assert "is healthy" in cli("whoami")
    cli("deployments", "register", "--yes", endpoint.url)
    assert "Greeter" in cli("deployments", "list")
    listed = cli("services", "list")
    assert "Greeter" in listed and "Counter" in listed
    described = cli("services", "describe", "Greeter")
    assert "greet" in described and "Bidirectional Stream" in described
    assert srv.call("/Greeter/greet", "CLI").json() == "Hello, CLI!"
