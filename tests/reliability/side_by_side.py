"""Ours and the real restate-server 1.7.12 side by side, for probes that compare them."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.endpoints import TsEndpoint
from tests.support.http import call
from tests.support.server import RealRestateServerProcess, RestateServerProcess

Server = RestateServerProcess | RealRestateServerProcess


@pytest.fixture
def pair(
    server: Callable[..., RestateServerProcess],
    real_server: Callable[..., RealRestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
) -> dict[str, Server]:
    endpoint = ts_endpoint()
    servers: dict[str, Server] = {"ours": server(), "real": real_server()}
    for srv in servers.values():
        assert srv.register(endpoint.url).status in (200, 201)
    return servers


def counter_value(srv: Server, key: str) -> int:
    """``Counter/{key}/get`` of the TS test services."""
    return int(call(srv.ingress_url, f"/Counter/{key}/get").json())
