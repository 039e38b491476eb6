"""Our restate_sdk against our server AND the real restate-server 1.7.12: one scenario
suite, both servers (the services are tests/e2e/py_services/app.py on restate_sdk)."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest

from tests.support.endpoints import PyEndpoint
from tests.support.http import acall
from tests.support.server import RealRestateServerProcess, RestateServerProcess
from tests.support.waiting import wait_for

Server = RestateServerProcess | RealRestateServerProcess

INACTIVITY = {"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "300ms"}


@pytest.fixture
def sdk(sdk_endpoint: Callable[..., PyEndpoint]) -> PyEndpoint:
    return sdk_endpoint()


@pytest.fixture(params=["ours", "real"])
def srv(
    request: pytest.FixtureRequest,
    server: Callable[..., RestateServerProcess],
    real_server: Callable[..., RealRestateServerProcess],
    sdk: PyEndpoint,
) -> Server:
    started: Server = (
        server(env=INACTIVITY) if request.param == "ours" else real_server(env=INACTIVITY)
    )
    reg = started.register(sdk.url)
    assert reg.status == 201, reg.text()
    return started


def _ok(resp: Any) -> Any:
    assert resp.status == 200, f"{resp.status} {resp.text()}"
    return resp.json()


_wait_for = partial(wait_for, timeout=20.0)


def test_greet_and_counter(srv: Server) -> None:
    assert _ok(srv.call("/Greeter/greet", "SDK")) == "Hello, SDK!"
    resp = srv.call("/Greeter/fail", "nope")
    assert resp.status == 418 and resp.json()["message"] == "nope"
    assert _ok(srv.call("/Counter/c/add", 2)) == 2
    assert _ok(srv.call("/Counter/c/add", 3)) == 5
    assert _ok(srv.call("/Counter/c/get")) == 5
    assert _ok(srv.call("/LazyCounter/l/add", 4)) == 4
    assert _ok(srv.call("/LazyCounter/l/get")) == 4


def test_saga(srv: Server, sdk: PyEndpoint) -> None:
    resp = srv.call("/Saga/book", "trip")
    assert resp.status == 409 and resp.json()["message"] == "car unavailable"
    assert sdk.side_effects()[-2:] == ["cancel trip hotel", "cancel trip flight"]


def test_sleep_across_a_server_restart(srv: Server, sdk: PyEndpoint) -> None:
    started_ms = time.time() * 1000
    invocation_id = srv.call("/Sleeper/sleepOnce/send", {"tag": "s", "ms": 2000}).json()[
        "invocationId"
    ]
    time.sleep(0.8)
    srv.kill9()
    srv.start()
    assert _ok(srv.call(f"/restate/invocation/{invocation_id}/attach", method="GET")) == "woke"
    [woke] = [line for line in sdk.side_effects() if line.startswith("woke s ")]
    assert int(woke.split()[-1]) >= started_ms + 2000


def test_awakeable(srv: Server, sdk: PyEndpoint) -> None:
    invocation_id = srv.call("/Awaker/wait/send", "a").json()["invocationId"]
    line = _wait_for(lambda: [x for x in sdk.side_effects() if x.startswith("awk a ")])[0]
    awakeable = line.split()[-1]
    time.sleep(0.5)
    assert srv.call(f"/restate/awakeables/{awakeable}/resolve", "yes").status == 202
    assert _ok(srv.call(f"/restate/invocation/{invocation_id}/attach", method="GET")) == "got yes"


def test_workflow_with_promise(srv: Server) -> None:
    assert srv.call("/Payment/o1/run/send", {"amount": 3}).status == 202
    _wait_for(lambda: _ok(srv.call("/Payment/o1/status")) == "waiting")
    assert _ok(srv.call("/Payment/o1/approve")) == "approved"
    assert _ok(srv.call("/restate/workflow/Payment/o1/attach", method="GET")) == "completed"


def test_fan_out_and_gather(srv: Server) -> None:
    assert _ok(srv.call("/FanOut/greetMany", 30, timeout=60)) == [f"Hello, {i}!" for i in range(30)]


async def test_idempotent_call(srv: Server) -> None:
    headers = {"idempotency-key": "once"}
    results = await asyncio.gather(
        *(acall(srv.ingress_url, "/Counter/idem/add", 1, headers) for _ in range(10))
    )
    assert {r.body for r in results} == {b"1"}
    assert (await acall(srv.ingress_url, "/Counter/idem/get")).json() == 1


def test_non_determinism_is_detected(srv: Server) -> None:
    resp = srv.call("/Nondeterministic/flip", "nd")
    assert resp.status == 570, resp.text()
    assert "mismatch" in resp.json()["message"].lower()


def test_cancel_runs_compensation(srv: Server, sdk: PyEndpoint) -> None:
    invocation_id = srv.call("/Canceller/longSleep/send", "c").json()["invocationId"]
    time.sleep(0.6)
    request = urllib.request.Request(
        f"{srv.admin_url}/invocations/{invocation_id}/cancel", method="PATCH"
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 202
    resp = srv.call(f"/restate/invocation/{invocation_id}/attach", method="GET")
    assert resp.status == 409
    assert "compensate c" in sdk.side_effects()
