"""The harness and the test services, proven without our server.

- both SDK endpoints start and answer discovery (v4 manifest) with the expected services;
- the real restate-server 1.7.12 runs the services with the results the e2e tests expect,
  including a crash of the endpoint between two steps and a kill -9 of the server itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.endpoints import PyEndpoint, TsEndpoint
from tests.support.http import MANIFEST_V4, acall
from tests.support.server import RealRestateServerProcess

EXPECTED_SERVICES: dict[str, tuple[str, dict[str, str | None]]] = {
    "Greeter": ("SERVICE", {"greet": None, "fail": None, "failDefault": None, "headers": None}),
    "Counter": (
        "VIRTUAL_OBJECT",
        {
            "add": "EXCLUSIVE",
            "get": "SHARED",
            "reset": "EXCLUSIVE",
            "slowAdd": "EXCLUSIVE",
            "keys": "SHARED",
        },
    ),
    "LazyCounter": ("VIRTUAL_OBJECT", {"add": "EXCLUSIVE", "get": "SHARED"}),
    "Steps": ("SERVICE", {"threeSteps": None}),
    "Flaky": ("SERVICE", {"failOnce": None}),
    "Sleeper": ("SERVICE", {"sleep": None, "sleepOnce": None}),
    "Travel": ("SERVICE", {"reserve": None, "cancel": None}),
    "Saga": ("SERVICE", {"book": None}),
    "FanOut": ("SERVICE", {"greetMany": None, "addMany": None, "sendLater": None}),
    "Awaker": ("SERVICE", {"wait": None, "resolve": None}),
    "Payment": (
        "WORKFLOW",
        {"run": "WORKFLOW", "approve": "SHARED", "decline": "SHARED", "status": "SHARED"},
    ),
    "Canceller": ("SERVICE", {"longSleep": None, "stuck": None, "parentOfLongSleep": None}),
    "Random": ("SERVICE", {"values": None}),
    "RetryKill": ("SERVICE", {"always": None}),
    "RetryPause": ("SERVICE", {"untilGate": None}),
    "Nondeterministic": ("SERVICE", {"flip": None}),
}

Endpoint = TsEndpoint | PyEndpoint


def _check_manifest(ep: Endpoint, sdk_prefix: str) -> None:
    resp = ep.discover()
    assert resp.status == 200, resp.text()
    assert resp.headers["content-type"] == MANIFEST_V4
    assert resp.headers["x-restate-server"].startswith(sdk_prefix)
    manifest = resp.json()
    assert manifest["minProtocolVersion"] <= 6 <= manifest["maxProtocolVersion"]
    services = {s["name"]: s for s in manifest["services"]}
    assert set(services) == set(EXPECTED_SERVICES)
    for name, (ty, handlers) in EXPECTED_SERVICES.items():
        svc = services[name]
        assert svc["ty"] == ty, name
        got = {h["name"]: h.get("ty") for h in svc["handlers"]}
        if ty == "SERVICE":
            assert set(got) == set(handlers), name
        else:
            assert got == handlers, name
    assert services["LazyCounter"].get("enableLazyState") is True
    assert not services["Counter"].get("enableLazyState")


def test_ts_endpoint_discovery(ts_endpoint: Callable[..., TsEndpoint]) -> None:
    _check_manifest(ts_endpoint(), "restate-sdk-typescript/1.17.2")


def test_py_endpoint_discovery(py_endpoint: Callable[..., PyEndpoint]) -> None:
    _check_manifest(py_endpoint(), "restate-sdk-python/1.2.0")


def test_endpoint_restart_keeps_port(ts_endpoint: Callable[..., TsEndpoint]) -> None:
    ep = ts_endpoint()
    first_pid = ep.process.pid
    ep.restart(kill=True)
    assert ep.process.pid != first_pid
    assert ep.discover().status == 200


@pytest.fixture(params=["ts", "py"])
def endpoint(
    request: pytest.FixtureRequest,
    ts_endpoint: Callable[..., TsEndpoint],
    py_endpoint: Callable[..., PyEndpoint],
) -> Endpoint:
    """The test services on one SDK, started (parametrized over both SDKs)."""
    return ts_endpoint() if request.param == "ts" else py_endpoint()


@pytest.fixture
def real(
    real_server: Callable[..., RealRestateServerProcess], endpoint: Endpoint
) -> RealRestateServerProcess:
    """A real restate-server with ``endpoint`` registered."""
    srv = real_server()
    reg = srv.register(endpoint.url)
    assert reg.status == 201, reg.text()
    assert {s["name"] for s in reg.json()["services"]} == set(EXPECTED_SERVICES)
    return srv


def _ok(resp: Any) -> Any:
    assert resp.status == 200, f"{resp.status} {resp.text()}"
    return resp.json()


def test_real_server_runs_the_services(real: RealRestateServerProcess, endpoint: Endpoint) -> None:
    # Greeter
    assert _ok(real.call("/Greeter/greet", "Alice")) == "Hello, Alice!"
    assert _ok(real.call("/Greeter/greet")) == "Hello, World!"  # no body at all
    assert _ok(real.call("/Greeter/greet", "")) == "Hello, World!"
    resp = real.call("/Greeter/fail", "teapot")
    assert resp.status == 418, resp.text()
    assert resp.json()["message"] == "teapot"
    assert resp.headers["x-restate-id"].startswith("inv_")
    resp = real.call("/Greeter/failDefault", "plain")
    assert resp.status == 500, resp.text()
    assert resp.json()["message"] == "plain"

    # Counter (eager state) and LazyCounter
    assert _ok(real.call("/Counter/c1/add", 2)) == 2
    assert _ok(real.call("/Counter/c1/add", 3)) == 5
    assert _ok(real.call("/Counter/c1/get")) == 5
    assert _ok(real.call("/Counter/c2/get")) == 0
    assert _ok(real.call("/Counter/c1/keys")) == ["count"]
    resp = real.call("/Counter/c1/reset")
    assert resp.status == 200, resp.text()
    assert _ok(real.call("/Counter/c1/get")) == 0
    assert _ok(real.call("/Counter/c1/keys")) == []
    assert _ok(real.call("/Counter/c1/add", 7)) == 7
    assert _ok(real.call("/LazyCounter/l1/add", 4)) == 4
    assert _ok(real.call("/LazyCounter/l1/add", 1)) == 5
    assert _ok(real.call("/LazyCounter/l1/get")) == 5

    # Flaky: the first attempt fails with a plain error, the server retries, the second wins.
    assert _ok(real.call("/Flaky/failOnce", "f1")) == 2

    # Steps with the gate open up front: runs straight through, each step once.
    endpoint.open_gate("s1")
    assert _ok(real.call("/Steps/threeSteps", "s1")) == "done s1"
    assert endpoint.side_effects() == ["s1 step1", "s1 step2", "s1 step3"]

    # kill -9 of the server, restart on the same base dir and ports: state survived.
    real.restart(kill=True)
    assert _ok(real.call("/Counter/c1/get")) == 7
    assert _ok(real.call("/LazyCounter/l1/get")) == 5
    assert _ok(real.call("/Greeter/greet", "again")) == "Hello, again!"


async def test_real_server_shared_get_during_exclusive_handler(
    real: RealRestateServerProcess,
) -> None:
    ingress = real.ingress_url
    assert (await acall(ingress, "/Counter/k/add", 1)).json() == 1
    slow = asyncio.create_task(acall(ingress, "/Counter/k/slowAdd", {"n": 10, "ms": 2000}))
    await asyncio.sleep(0.5)  # slowAdd holds the key's lock now
    queued_add = asyncio.create_task(acall(ingress, "/Counter/k/add", 100))
    started = time.monotonic()
    during = await acall(ingress, "/Counter/k/get")
    assert time.monotonic() - started < 1.2, "shared get waited for the exclusive handler"
    assert during.status == 200 and during.json() == 1
    assert not slow.done() and not queued_add.done()
    assert (await slow).json() == 11
    assert (await queued_add).json() == 111  # exclusive calls on one key run in order
    assert (await acall(ingress, "/Counter/k/get")).json() == 111


def test_real_server_endpoint_crash_between_steps(
    real: RealRestateServerProcess, endpoint: Endpoint
) -> None:
    resp = real.call("/Steps/threeSteps/send", "crash1")
    assert resp.status == 202, resp.text()
    invocation_id = resp.json()["invocationId"]

    endpoint.wait_at_gate("crash1")  # step1 and step2 are journaled, step3 is running
    endpoint.kill9()
    assert endpoint.side_effects() == ["crash1 step1", "crash1 step2"]

    endpoint.open_gate("crash1")
    endpoint.start()  # same port: the server's next retry reaches it
    result = real.call(f"/restate/invocation/{invocation_id}/attach", method="GET")
    assert _ok(result) == "done crash1"
    # Replay took step1 and step2 from the journal; only step3 ran again (the first time
    # it never got past its gate).
    assert endpoint.side_effects() == ["crash1 step1", "crash1 step2", "crash1 step3"]
