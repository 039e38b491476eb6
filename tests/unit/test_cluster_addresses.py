"""The fabric address a node announces: configured outright, or the bound port on the
host of the real server's ``advertised-address`` / ``advertised-host``."""

from __future__ import annotations

import socket

from restate_server.cluster.membership import advertised_fabric_address
from restate_server.config.loader import load_config


def _address(env: dict[str, str], bound: str = "0.0.0.0:5123") -> str:
    return advertised_fabric_address(load_config(env=env), bound)


def test_the_whole_address_when_configured() -> None:
    env = {"RESTATE_PY__CLUSTER__FABRIC_ADVERTISED_ADDRESS": "restate-1:7000"}
    assert _address(env) == "restate-1:7000"


def test_the_host_of_the_real_advertised_address_with_the_bound_port() -> None:
    assert _address({"RESTATE_ADVERTISED_ADDRESS": "http://node-2:5122/"}) == "node-2:5123"
    assert _address({"RESTATE_ADVERTISED_HOST": "node-3"}, "0.0.0.0:6000") == "node-3:6000"


def test_a_wildcard_bind_becomes_this_hosts_name() -> None:
    assert _address({}) == f"{socket.gethostname()}:5123"
    assert _address({}, "127.0.0.1:5999") == "127.0.0.1:5999"
