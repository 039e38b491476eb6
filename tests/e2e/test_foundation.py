"""The server foundation, end to end: our server process, real SDK endpoints.

Every scenario runs against the TypeScript SDK 1.17.2 and the official Python SDK 1.2.0.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.endpoints import PyEndpoint, TsEndpoint
from tests.support.http import acall, call
from tests.support.server import RestateServerProcess

Endpoint = TsEndpoint | PyEndpoint


@pytest.fixture
def ours(server: Callable[..., RestateServerProcess], endpoint: Endpoint) -> RestateServerProcess:
    srv = server()
    reg = srv.register(endpoint.url)
    assert reg.status == 201, reg.text()
    return srv


def _ok(resp: Any) -> Any:
    assert resp.status == 200, f"{resp.status} {resp.text()}"
    return resp.json()


def test_greeter_and_errors(ours: RestateServerProcess) -> None:
    resp = ours.call("/Greeter/greet", "World")
    assert _ok(resp) == "Hello, World!"
    assert resp.headers["x-restate-id"].startswith("inv_1")
    assert resp.headers["content-type"] == "application/json"
    assert _ok(ours.call("/Greeter/greet")) == "Hello, World!"

    resp = ours.call("/Nope/greet", "x")
    assert resp.status == 404
    assert resp.json() == {
        "code": 404,
        "message": "service 'Nope' not found, make sure to register the service before calling it.",
        "source": "ingress",
    }
    assert resp.headers["x-restate-error-source"] == "ingress"
    assert "x-restate-id" not in resp.headers

    resp = ours.call("/Greeter/nope", "x")
    assert resp.status == 404
    assert "the handler 'nope' was not found" in resp.json()["message"]

    resp = ours.call("/Greeter/fail", "teapot")
    assert resp.status == 418
    assert resp.json() == {"code": 418, "message": "teapot", "source": "invocation"}
    assert resp.headers["x-restate-error-source"] == "invocation"
    assert resp.headers["x-restate-id"].startswith("inv_1")

    resp = ours.call("/Greeter/failDefault", "plain")
    assert resp.status == 500 and resp.json()["message"] == "plain"


async def test_counter_is_exclusive_per_key(ours: RestateServerProcess) -> None:
    ingress = ours.ingress_url
    results = await asyncio.gather(*(acall(ingress, "/Counter/hot/add", 1) for _ in range(200)))
    assert all(r.status == 200 for r in results), [r.text() for r in results if r.status != 200]
    assert sorted(r.json() for r in results) == list(range(1, 201))
    assert (await acall(ingress, "/Counter/hot/get")).json() == 200


async def test_concurrent_invocations_need_no_retries(ours: RestateServerProcess) -> None:
    """Many streams on one HTTP/2 connection to the endpoint: none of them breaks it."""
    ingress = ours.ingress_url
    for _ in range(3):
        results = await asyncio.gather(
            *(acall(ingress, f"/Counter/c{i}/add", 1) for i in range(64)),
            *(acall(ingress, "/Greeter/greet", f"n{i}") for i in range(64)),
        )
        assert all(r.status == 200 for r in results), [r.text() for r in results]
    log = ours.log_path.read_text()
    assert "Invocation error" not in log, ours.log_tail()


async def test_shared_get_runs_while_an_exclusive_handler_holds_the_key(
    ours: RestateServerProcess,
) -> None:
    ingress = ours.ingress_url
    assert (await acall(ingress, "/Counter/k/add", 1)).json() == 1
    slow = asyncio.create_task(acall(ingress, "/Counter/k/slowAdd", {"n": 10, "ms": 2000}))
    await asyncio.sleep(0.5)
    queued = asyncio.create_task(acall(ingress, "/Counter/k/add", 100))
    started = time.monotonic()
    during = await acall(ingress, "/Counter/k/get")
    assert time.monotonic() - started < 1.2, "a shared get waited for the exclusive handler"
    assert during.status == 200 and during.json() == 1
    assert not slow.done() and not queued.done()
    assert (await slow).json() == 11
    assert (await queued).json() == 111


def test_lazy_state_and_state_keys(ours: RestateServerProcess) -> None:
    assert _ok(ours.call("/LazyCounter/l/add", 4)) == 4
    assert _ok(ours.call("/LazyCounter/l/add", 1)) == 5
    assert _ok(ours.call("/LazyCounter/l/get")) == 5
    assert _ok(ours.call("/Counter/c/add", 2)) == 2
    assert _ok(ours.call("/Counter/c/keys")) == ["count"]
    assert ours.call("/Counter/c/reset").status == 200
    assert _ok(ours.call("/Counter/c/keys")) == []


def test_retryable_error_is_retried(ours: RestateServerProcess) -> None:
    assert _ok(ours.call("/Flaky/failOnce", "f1")) == 2


def test_endpoint_killed_between_steps_runs_each_step_once(
    ours: RestateServerProcess, endpoint: Endpoint
) -> None:
    resp = ours.call("/Steps/threeSteps/send", "crash1")
    assert resp.status == 202, resp.text()
    invocation_id = resp.json()["invocationId"]
    endpoint.wait_at_gate("crash1")  # step1 and step2 are journaled, step3 is running
    endpoint.kill9()
    assert endpoint.side_effects() == ["crash1 step1", "crash1 step2"]
    endpoint.open_gate("crash1")
    endpoint.start()
    result = ours.call(f"/restate/invocation/{invocation_id}/attach", method="GET")
    assert _ok(result) == "done crash1"
    assert endpoint.side_effects() == ["crash1 step1", "crash1 step2", "crash1 step3"]


def test_server_killed_with_invocations_in_flight(
    ours: RestateServerProcess, endpoint: Endpoint
) -> None:
    accepted: list[str] = []
    # Invocations parked mid-way (step3 waits at its gate) when the server dies.
    for n in range(3):
        resp = ours.call("/Steps/threeSteps/send", f"srv{n}")
        assert resp.status == 202, resp.text()
        accepted.append(resp.json()["invocationId"])
    # Counter adds, some of them queued behind each other on the same keys.
    expected: dict[str, int] = {}
    for n in range(30):
        key = f"key{n % 3}"
        resp = ours.call(f"/Counter/{key}/add/send", 1)
        assert resp.status == 202, resp.text()
        accepted.append(resp.json()["invocationId"])
        expected[key] = expected.get(key, 0) + 1
    for n in range(3):
        endpoint.wait_at_gate(f"srv{n}")

    ours.kill9()
    ours.start()
    for n in range(3):
        endpoint.open_gate(f"srv{n}")

    for invocation_id in accepted:
        resp = ours.call(f"/restate/invocation/{invocation_id}/attach", method="GET")
        assert resp.status == 200, resp.text()
    for key, count in expected.items():
        assert _ok(ours.call(f"/Counter/{key}/get")) == count
    lines = endpoint.side_effects()
    for n in range(3):
        assert lines.count(f"srv{n} step1") == 1
        assert lines.count(f"srv{n} step2") == 1
        assert lines.count(f"srv{n} step3") >= 1


def test_state_survives_a_server_crash(ours: RestateServerProcess) -> None:
    assert _ok(ours.call("/Counter/durable/add", 5)) == 5
    ours.kill9()
    ours.start()
    assert _ok(ours.call("/Counter/durable/get")) == 5
    assert _ok(ours.call("/Counter/durable/add", 1)) == 6


def test_unknown_route_shapes(ours: RestateServerProcess) -> None:
    resp = ours.call("/Greeter", "x")
    assert resp.status == 400 and resp.json()["message"] == "bad path: /Greeter"
    resp = ours.call("/Counter/add", 1)
    assert resp.status == 400
    resp = ours.call("/Greeter/greet", "x", method="PUT")
    assert resp.status == 405
    resp = call(ours.ingress_url, "/restate/health", method="GET")
    assert resp.status == 200 and "Greeter" in resp.json()["services"]


def test_expect_100_continue_is_answered_before_the_body(
    server: Callable[..., RestateServerProcess], ts_endpoint: Callable[..., TsEndpoint]
) -> None:
    """curl sends "Expect: 100-continue" before bodies over 1 KiB and holds the body back
    until the interim answer (or a second) comes."""
    srv = server()
    assert srv.register(ts_endpoint().url).status == 201
    name = "x" * 3000
    body = f'"{name}"'.encode()
    with socket.create_connection(("127.0.0.1", srv.ingress_port), timeout=5) as sock:
        sock.sendall(
            b"POST /Greeter/greet HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            + f"content-length: {len(body)}\r\nexpect: 100-continue\r\n\r\n".encode()
        )
        sock.settimeout(0.5)
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.settimeout(5)
        sock.sendall(body)
        answer = b""
        while not answer.endswith(f'"Hello, {name}!"'.encode()):
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 OK")
