"""The durable building blocks, end to end against both real SDKs: timers, calls and
sends, sagas, fan-out, awakeables, workflows, idempotency, cancel and kill, retention,
deterministic randomness, headers and retry policies."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.endpoints import PyEndpoint, TsEndpoint
from tests.support.http import acall
from tests.support.server import RestateServerProcess
from tests.support.waiting import wait_for

Endpoint = TsEndpoint | PyEndpoint


@pytest.fixture
def ours(server: Callable[..., RestateServerProcess], endpoint: Endpoint) -> RestateServerProcess:
    # A short inactivity timeout makes waiting invocations suspend, as they would in
    # production after a minute.
    srv = server(env={"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "300ms"})
    reg = srv.register(endpoint.url)
    assert reg.status == 201, reg.text()
    return srv


def _ok(resp: Any) -> Any:
    assert resp.status == 200, f"{resp.status} {resp.text()}"
    return resp.json()


def _admin(srv: RestateServerProcess, method: str, path: str) -> tuple[int, bytes]:
    request = urllib.request.Request(srv.admin_url + path, method=method)
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _lines(endpoint: Endpoint, prefix: str) -> list[str]:
    return [line for line in endpoint.side_effects() if line.startswith(prefix)]


def test_sleep_survives_a_server_crash_and_fires_on_time(
    ours: RestateServerProcess, endpoint: Endpoint
) -> None:
    started_ms = time.time() * 1000
    resp = ours.call("/Sleeper/sleepOnce/send", {"tag": "t1", "ms": 2000})
    invocation_id = resp.json()["invocationId"]
    time.sleep(0.7)  # the sleep is journaled and its timer stored
    ours.kill9()
    ours.start()
    assert _ok(ours.call(f"/restate/invocation/{invocation_id}/attach", method="GET")) == "woke"
    [woke] = _lines(endpoint, "woke t1 ")
    woke_ms = int(woke.split()[-1])
    assert started_ms + 2000 <= woke_ms <= started_ms + 3000 + 500  # due, at most ~1 s late


def test_saga_compensates_in_reverse_order_once(
    ours: RestateServerProcess, endpoint: Endpoint
) -> None:
    resp = ours.call("/Saga/book", "trip1")
    assert resp.status == 409, resp.text()
    assert resp.json()["message"] == "car unavailable"
    assert endpoint.side_effects() == [
        "reserve trip1 flight",
        "reserve trip1 hotel",
        "reserve trip1 car",
        "cancel trip1 hotel",
        "cancel trip1 flight",
    ]


def test_fan_out_of_100_calls_and_gather(ours: RestateServerProcess) -> None:
    results = _ok(ours.call("/FanOut/greetMany", 100, timeout=60))
    assert results == [f"Hello, {i}!" for i in range(100)]
    # calls into one object key still run one at a time
    added = _ok(ours.call("/FanOut/addMany", {"key": "fan", "n": 20}, timeout=60))
    assert sorted(added) == list(range(1, 21))
    assert _ok(ours.call("/Counter/fan/get")) == 20


def test_delayed_sends(ours: RestateServerProcess) -> None:
    _ok(ours.call("/FanOut/sendLater", {"key": "later", "ms": 1500}))
    time.sleep(0.5)
    assert _ok(ours.call("/Counter/later/get")) == 0
    wait_for(lambda: _ok(ours.call("/Counter/later/get")) == 1, timeout=10)
    # the ingress form: /send?delay=
    resp = ours.call("/Counter/later2/add/send?delay=1s", 5)
    assert resp.status == 202 and "executionTime" in resp.json()
    assert _ok(ours.call("/Counter/later2/get")) == 0
    wait_for(lambda: _ok(ours.call("/Counter/later2/get")) == 5, timeout=10)


def test_awakeable_resolved_through_the_ingress_after_a_restart(
    ours: RestateServerProcess, endpoint: Endpoint
) -> None:
    resp = ours.call("/Awaker/wait/send", "a1")
    invocation_id = resp.json()["invocationId"]
    line = wait_for(lambda: _lines(endpoint, "awk a1 "))
    awakeable = line[0].split()[-1]
    assert awakeable.startswith("sign_1")
    time.sleep(0.6)  # suspended by now
    ours.kill9()
    ours.start()
    resp = ours.call(f"/restate/awakeables/{awakeable}/resolve", "hello")
    assert resp.status == 202, resp.text()
    assert _ok(ours.call(f"/restate/invocation/{invocation_id}/attach", method="GET")) == (
        "got hello"
    )
    # resolving it again is accepted and changes nothing
    assert ours.call(f"/restate/awakeables/{awakeable}/resolve", "again").status == 202


def test_awakeable_resolved_by_another_handler(
    ours: RestateServerProcess, endpoint: Endpoint
) -> None:
    resp = ours.call("/Awaker/wait/send", "a2")
    invocation_id = resp.json()["invocationId"]
    awakeable = wait_for(lambda: _lines(endpoint, "awk a2 "))[0].split()[-1]
    ours.call("/Awaker/resolve", {"id": awakeable, "value": "from a handler"})
    assert _ok(ours.call(f"/restate/invocation/{invocation_id}/attach", method="GET")) == (
        "got from a handler"
    )


def test_awakeable_rejected_through_the_ingress(
    ours: RestateServerProcess, endpoint: Endpoint
) -> None:
    resp = ours.call("/Awaker/wait/send", "a3")
    invocation_id = resp.json()["invocationId"]
    awakeable = wait_for(lambda: _lines(endpoint, "awk a3 "))[0].split()[-1]
    resp = ours.call(
        f"/restate/awakeables/{awakeable}/reject",
        headers={"content-type": "text/plain"},
    )
    assert resp.status == 202
    resp = ours.call(f"/restate/invocation/{invocation_id}/attach", method="GET")
    assert resp.status == 500, resp.text()


def test_payment_workflow(ours: RestateServerProcess, endpoint: Endpoint) -> None:
    resp = ours.call("/Payment/order1/run/send", {"amount": 42})
    assert resp.status == 202 and resp.json()["status"] == "Accepted"
    run_id = resp.json()["invocationId"]
    wait_for(lambda: _ok(ours.call("/Payment/order1/status")) == "waiting")
    resp = ours.call("/restate/workflow/Payment/order1/output", method="GET")
    assert resp.status == 470
    # a second run of the same key is refused
    again = ours.call("/Payment/order1/run", {"amount": 1})
    assert again.status == 409
    assert again.json()["message"] == "the workflow method was already invoked"
    resend = ours.call("/Payment/order1/run/send", {"amount": 1})
    assert resend.json() == {"invocationId": run_id, "status": "PreviouslyAccepted"}
    assert _ok(ours.call("/Payment/order1/approve")) == "approved"
    resp = ours.call("/restate/workflow/Payment/order1/attach", method="GET")
    assert _ok(resp) == "completed"
    assert resp.headers["x-restate-id"] == run_id
    assert _ok(ours.call("/Payment/order1/status")) == "completed"
    # declined path
    ours.call("/Payment/order2/run/send", {"amount": 7})
    wait_for(lambda: _ok(ours.call("/Payment/order2/status")) == "waiting")
    assert _ok(ours.call("/Payment/order2/decline")) == "declined"
    assert _ok(ours.call("/restate/workflow/Payment/order2/attach", method="GET")) == "cancelled"
    effects = endpoint.side_effects()
    assert effects.count("reserve order1 42") == 1 and effects.count("charge order1") == 1
    assert effects.count("release order2") == 1


async def test_same_idempotency_key_50_times_runs_once(ours: RestateServerProcess) -> None:
    headers = {"idempotency-key": "idem-1"}
    results = await asyncio.gather(
        *(acall(ours.ingress_url, "/Counter/idem/add", 1, headers) for _ in range(50))
    )
    assert all(r.status == 200 for r in results), [r.text() for r in results]
    assert {r.body for r in results} == {b"1"}
    assert len({r.headers["x-restate-id"] for r in results}) == 1
    assert (await acall(ours.ingress_url, "/Counter/idem/get")).json() == 1
    # the result is kept: attach by idempotency key, and the same key answers again
    resp = ours.call("/restate/invocation/Counter/idem/add/idem-1/output", method="GET")
    assert _ok(resp) == 1 and "idempotency-expires" in resp.headers
    again = ours.call("/Counter/idem/add", 1, headers)
    assert _ok(again) == 1 and "idempotency-expires" in again.headers


def test_completed_calls_are_retained_and_purgeable(ours: RestateServerProcess) -> None:
    resp = ours.call("/Greeter/greet", "kept")
    invocation_id = resp.headers["x-restate-id"]
    out = ours.call(f"/restate/invocation/{invocation_id}/output", method="GET")
    assert _ok(out) == "Hello, kept!" and "idempotency-expires" in out.headers
    status, _ = _admin(ours, "PATCH", f"/invocations/{invocation_id}/purge")
    assert status == 200
    gone = ours.call(f"/restate/invocation/{invocation_id}/output", method="GET")
    assert gone.status == 404


def test_cancel_runs_the_compensation(ours: RestateServerProcess, endpoint: Endpoint) -> None:
    resp = ours.call("/Canceller/longSleep/send", "c1")
    invocation_id = resp.json()["invocationId"]
    time.sleep(0.6)
    status, _ = _admin(ours, "PATCH", f"/invocations/{invocation_id}/cancel")
    assert status == 202
    resp = ours.call(f"/restate/invocation/{invocation_id}/attach", method="GET")
    assert resp.status == 409, resp.text()
    assert _lines(endpoint, "compensate c1") == ["compensate c1"]
    status, _ = _admin(ours, "PATCH", f"/invocations/{invocation_id}/cancel")
    assert status == 409  # already completed


def test_cancel_propagates_to_child_calls(ours: RestateServerProcess, endpoint: Endpoint) -> None:
    resp = ours.call("/Canceller/parentOfLongSleep/send", "child1")
    parent_id = resp.json()["invocationId"]
    time.sleep(0.8)  # the child is sleeping, the parent waits for it
    status, _ = _admin(ours, "PATCH", f"/invocations/{parent_id}/cancel")
    assert status == 202
    resp = ours.call(f"/restate/invocation/{parent_id}/attach", method="GET")
    assert resp.status == 409, resp.text()
    wait_for(lambda: _lines(endpoint, "compensate child1"))
    assert _lines(endpoint, "compensate child1") == ["compensate child1"]


async def test_kill_ends_a_stuck_invocation_and_answers_the_caller(
    ours: RestateServerProcess, endpoint: Endpoint
) -> None:
    headers = {"idempotency-key": "stuck-1"}
    resp = ours.call("/Canceller/stuck/send", "k1", headers)
    stuck_id = resp.json()["invocationId"]
    # a caller waiting for the same invocation (same idempotency key)
    caller = asyncio.create_task(acall(ours.ingress_url, "/Canceller/stuck", "k1", headers))
    await asyncio.to_thread(wait_for, lambda: len(_lines(endpoint, "try k1")) >= 2)
    assert not caller.done()
    status, _ = _admin(ours, "PATCH", f"/invocations/{stuck_id}/kill")
    assert status == 200
    answer = await asyncio.wait_for(caller, 15)
    assert answer.status == 409 and answer.json()["message"] == "killed"
    resp = ours.call(f"/restate/invocation/{stuck_id}/attach", method="GET")
    assert resp.status == 409 and resp.json()["message"] == "killed"
    tries = len(_lines(endpoint, "try k1"))
    time.sleep(1.5)
    assert len(_lines(endpoint, "try k1")) == tries  # no attempt after the kill


def test_deterministic_random_is_the_same_on_replay(
    ours: RestateServerProcess, endpoint: Endpoint
) -> None:
    values = _ok(ours.call("/Random/values", "r1"))
    attempts = _lines(endpoint, "rand r1 ")
    assert len(attempts) == 2 and attempts[0] == attempts[1]
    assert attempts[1] == f"rand r1 {values['r']} {values['u']}"
    other = _ok(ours.call("/Random/values", "r2"))
    assert other != values


def test_request_headers_reach_the_handler(ours: RestateServerProcess) -> None:
    headers = _ok(ours.call("/Greeter/headers", headers={"x-custom": "hello"}))
    assert headers["x-custom"] == "hello"
    assert "idempotency-key" not in headers


def test_retry_policy_kill_after_max_attempts(
    ours: RestateServerProcess, endpoint: Endpoint
) -> None:
    resp = ours.call("/RetryKill/always", "rk")
    assert resp.status == 500, resp.text()
    assert "boom rk" in resp.json()["message"]
    assert len(_lines(endpoint, "attempt rk")) == 3


def test_retry_policy_pause_then_resume(ours: RestateServerProcess, endpoint: Endpoint) -> None:
    resp = ours.call("/RetryPause/untilGate/send", "rp")
    invocation_id = resp.json()["invocationId"]
    wait_for(lambda: len(_lines(endpoint, "attempt rp")) == 2)
    time.sleep(0.5)
    assert len(_lines(endpoint, "attempt rp")) == 2  # paused: no more attempts
    out = ours.call(f"/restate/invocation/{invocation_id}/output", method="GET")
    assert out.status == 470
    endpoint.open_gate("rp")
    status, _ = _admin(ours, "PATCH", f"/invocations/{invocation_id}/resume")
    assert status == 200
    assert _ok(ours.call(f"/restate/invocation/{invocation_id}/attach", method="GET")) == (
        "passed rp"
    )


def test_completed_invocations_are_cleaned_up_after_retention(
    server: Callable[..., RestateServerProcess], endpoint: Endpoint
) -> None:
    srv = server(
        env={
            "RESTATE_DEFAULT_IDEMPOTENCY_RETENTION": "1s",
            "RESTATE_DEFAULT_JOURNAL_RETENTION": "1s",
            "RESTATE_WORKER__CLEANUP_INTERVAL": "200ms",
        }
    )
    assert srv.register(endpoint.url).status == 201
    resp = srv.call("/Greeter/greet", "short")
    invocation_id = resp.headers["x-restate-id"]
    assert srv.call(f"/restate/invocation/{invocation_id}/output", method="GET").status == 200
    wait_for(
        lambda: srv.call(f"/restate/invocation/{invocation_id}/output", method="GET").status == 404,
        timeout=10,
    )


def test_admin_cancel_and_kill_of_unknown_invocations(ours: RestateServerProcess) -> None:
    unknown = "inv_1df0LOOFd1V15lZS3ZwWvSmJGglkb6OuP5"
    status, body = _admin(ours, "PATCH", f"/invocations/{unknown}/kill")
    assert status == 404, body
    status, body = _admin(ours, "PATCH", "/invocations/not-an-id/kill")
    assert status == 400
    assert "invalid" in json.loads(body)["message"]


def test_non_determinism_is_retried_then_killed(ours: RestateServerProcess) -> None:
    resp = ours.call("/Nondeterministic/flip", "nd")
    assert resp.status == 570, resp.text()
    assert "mismatch" in resp.json()["message"].lower()
