"""Admin control routes end to end: state patching and restart-as-new, against our server
and the real restate-server 1.7.12 with the same TS SDK endpoint.

Every scenario runs on both servers and expects the same statuses and bodies (invocation
ids differ from run to run and are compared by shape). The expectations were recorded
from the real server; the runs on ``real`` keep checking that they still hold.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from restate_server.partition.state_version import state_version
from tests.support.endpoints import TsEndpoint
from tests.support.http import Response, call, request
from tests.support.node import NodeTools
from tests.support.real_cli import RealCli
from tests.support.server import RealRestateServerProcess, RestateServerProcess

Server = RestateServerProcess | RealRestateServerProcess
UNKNOWN_INVOCATION = "inv_1jE7ZYejNpQA0l5v523b0hdUu1G8CeZeCo"
UNKNOWN_DEPLOYMENT = "dp_10UDT2TKPXUQpxbRXeXPJfk"
INVOCATION_ID = re.compile(r"^inv_1[0-9a-zA-Z]{33}$")


@pytest.fixture(params=["ours", "real"])
def env(
    request: pytest.FixtureRequest,
    server: Callable[..., RestateServerProcess],
    real_server: Callable[..., RealRestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
) -> tuple[Server, TsEndpoint]:
    endpoint = ts_endpoint()
    srv: Server = server() if request.param == "ours" else real_server()
    srv.register(endpoint.url)
    return srv, endpoint


def admin(srv: Server, method: str, path: str, body: Any = None) -> Response:
    if body is None:
        return request(method, srv.admin_url + path)
    return call(srv.admin_url, path, body, method=method)


def patch_state(srv: Server, key: str, state: dict[str, Any], **extra: Any) -> Response:
    body = {"object_key": key, "new_state": state, **extra}
    return admin(srv, "POST", "/v4/services/Counter/state", body)


def restart(srv: Server, invocation_id: str, query: str = "") -> Response:
    return admin(srv, "PATCH", f"/v4/invocations/{invocation_id}/restart-as-new{query}")


def attach(srv: Server, invocation_id: str) -> Any:
    response = request("GET", f"{srv.ingress_url}/restate/invocation/{invocation_id}/attach")
    assert response.status == 200, response.text()
    return response.json()


def invoke(srv: Server, path: str, body: Any) -> tuple[str, Any]:
    response = srv.call(path, body)
    assert response.status == 200, response.text()
    return response.headers["x-restate-id"], response.json()


def send(srv: Server, path: str, body: Any) -> str:
    response = srv.call(path + "/send", body)
    assert response.status == 202, response.text()
    return response.json()["invocationId"]


def count(srv: Server, key: str) -> Any:
    return srv.call(f"/Counter/{key}/get").json()


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def error(message: str) -> dict[str, Any]:
    return {"message": message, "restate_code": None}


def new_id_of(response: Response, original: str) -> str:
    assert response.status == 200, response.text()
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["new_invocation_id"]
    new_id = body["new_invocation_id"]
    # a fresh id on the same partition key as the original
    assert INVOCATION_ID.match(new_id) and new_id != original
    assert new_id[:16] == original[:16]
    return str(new_id)


# ---------------------------------------------------------------- state


def test_state_patch_replaces_the_state(env: tuple[Server, TsEndpoint]) -> None:
    srv, _ = env
    assert invoke(srv, "/Counter/p1/add", 5)[1] == 5
    version = state_version([(b"count", b"5")])
    response = patch_state(srv, "p1", {"count": [52, 50], "note": "hi"}, version=version)
    assert (response.status, response.body) == (202, b"")
    eventually(lambda: count(srv, "p1") == 42)
    assert srv.call("/Counter/p1/keys").json() == ["count", "note"]
    # computed from a state that is gone: accepted, and dropped
    assert patch_state(srv, "p1", {"count": "7"}, version=version).status == 202
    time.sleep(0.5)
    assert count(srv, "p1") == 42
    assert patch_state(srv, "p1", {}).status == 202
    eventually(lambda: srv.call("/Counter/p1/keys").json() == [])

    response = admin(srv, "POST", "/services/Greeter/state", {"object_key": "p1", "new_state": {}})
    assert (response.status, response.json()) == (
        400,
        error("Cannot modify state for service type Service"),
    )
    response = admin(
        srv, "POST", "/services/Nope/state", {"object_key": "p1", "new_state": {"a": "b"}}
    )
    assert (response.status, response.json()) == (
        404,
        error("The requested service 'Nope' does not exist"),
    )
    response = admin(srv, "POST", "/services/Nope/state", {"object_key": "p1", "new_state": {}})
    assert response.status == 202
    response = patch_state(srv, "p1", {"a": 5})
    assert response.status == 422
    # the real server adds the position (" at line 1 column 41"); ours does not
    assert response.text().startswith(
        "Failed to deserialize the JSON body into the target type: "
        "new_state.a: invalid type: integer `5`, expected byte array"
    )


def test_state_patch_waits_for_the_key_holder(env: tuple[Server, TsEndpoint]) -> None:
    srv, _ = env
    result: dict[str, Any] = {}
    holder = threading.Thread(
        target=lambda: result.update(slow=srv.call("/Counter/p2/slowAdd", {"ms": 2000, "n": 1}))
    )
    holder.start()
    try:
        time.sleep(0.7)  # slowAdd holds the key, sleeping inside its run
        started = time.monotonic()
        assert patch_state(srv, "p2", {"count": "100"}).status == 202
        # answered once accepted, not once applied
        assert time.monotonic() - started < 1.0
        assert count(srv, "p2") == 0
    finally:
        holder.join()
    assert result["slow"].json() == 1
    eventually(lambda: count(srv, "p2") == 100)


# ---------------------------------------------------------------- restart-as-new


def test_restart_as_new_runs_again(env: tuple[Server, TsEndpoint]) -> None:
    srv, endpoint = env
    greet_id, greeting = invoke(srv, "/Greeter/greet", "Alice")
    new_id = new_id_of(restart(srv, greet_id), greet_id)
    assert attach(srv, new_id) == greeting == "Hello, Alice!"

    add_id, _ = invoke(srv, "/Counter/r1/add", 5)
    new_id = new_id_of(restart(srv, add_id), add_id)
    assert attach(srv, new_id) == 10 and count(srv, "r1") == 10
    # from=1 keeps the GetEagerState entry: the first run read no state, so 0 + 5 again
    new_id = new_id_of(restart(srv, add_id, "?from=1&deployment=Keep"), add_id)
    assert attach(srv, new_id) == 5 and count(srv, "r1") == 5
    # from=3 keeps everything up to the Output: the result without running anything
    new_id = new_id_of(restart(srv, add_id, "?from=3"), add_id)
    assert attach(srv, new_id) == 5

    endpoint.open_gate("rn")
    steps_id, _ = invoke(srv, "/Steps/threeSteps", "rn")
    assert [line for line in endpoint.side_effects() if line.startswith("rn ")] == [
        "rn step1",
        "rn step2",
        "rn step3",
    ]
    # entries 0..=3: Input, Run step1 + its completion, Run step2 (+ its completion at 4)
    new_id = new_id_of(restart(srv, steps_id, "?from=3"), steps_id)
    assert attach(srv, new_id) == "done rn"
    assert [line for line in endpoint.side_effects() if line.startswith("rn ")] == [
        "rn step1",
        "rn step2",
        "rn step3",
        "rn step3",
    ]


def test_restart_as_new_refusals(env: tuple[Server, TsEndpoint]) -> None:
    srv, _ = env
    add_id, _ = invoke(srv, "/Counter/r2/add", 1)
    quoted = f"'{add_id}'"
    cases = [
        (
            "?from=4",
            400,
            f"The prefix of the journal {quoted} up to 'from' (included) contains some "
            "Commands without respective Completions.",
        ),
        (
            "?from=4294967295",
            400,
            f"The given index is out of range of currently stored journal for invocation {quoted}.",
        ),
        (
            f"?deployment={UNKNOWN_DEPLOYMENT}",
            400,
            "The given deployment was not found when trying to restart as new the invocation "
            f"{quoted}.",
        ),
        (
            "?deployment=nope",
            400,
            "The query parameter 'deployment' is invalid. Reason: bad format",
        ),
    ]
    for query, status, message in cases:
        response = restart(srv, add_id, query)
        assert (response.status, response.json()) == (status, error(message)), query
    response = restart(srv, add_id, "?from=abc")
    assert (response.status, response.text()) == (
        400,
        "Failed to deserialize query string: from: invalid digit found in string",
    )
    response = restart(srv, UNKNOWN_INVOCATION)
    assert (response.status, response.json()) == (
        404,
        error(f"The requested invocation '{UNKNOWN_INVOCATION}' does not exist"),
    )
    response = restart(srv, "inv_bad")
    assert (response.status, response.json()) == (
        400,
        error("The request field 'invocation_id' is invalid. Reason: unrecognized codec version"),
    )

    running = send(srv, "/Counter/r3/slowAdd", {"ms": 3000, "n": 1})
    time.sleep(0.5)
    inboxed = send(srv, "/Counter/r3/add", 1)
    time.sleep(0.2)
    response = restart(srv, running)
    assert (response.status, response.json()) == (
        409,
        error(f"The invocation '{running}' is still running."),
    )
    response = restart(srv, inboxed)
    assert (response.status, response.json()) == (
        425,
        error(f"The invocation '{inboxed}' cannot be restarted because it's not running yet."),
    )

    greet_id, _ = invoke(srv, "/Greeter/greet", "Bob")
    response = admin(srv, "PATCH", f"/v4/invocations/{greet_id}/purge-journal")
    assert (response.status, response.body) == (200, b"")
    response = restart(srv, greet_id)
    assert (response.status, response.json()) == (
        410,
        error(
            f"The invocation '{greet_id}' cannot be restarted because the input is not "
            "available. This indicates that the journal was already purged, or not retained "
            "at all."
        ),
    )

    run_id = send(srv, "/Payment/w1/run", {"amount": 1})
    assert srv.call("/Payment/w1/approve").json() == "approved"
    assert attach(srv, run_id) == "completed"
    response = restart(srv, run_id)
    assert (response.status, response.json()) == (
        422,
        error(
            f"Restarting the invocation '{run_id}' is not supported. Restarting workflows is "
            "not supported, and restarting invocations created using the old service protocol."
        ),
    )


# ---------------------------------------------------------------- the real CLI


def test_real_cli_state_and_restart(
    env: tuple[Server, TsEndpoint], tools: NodeTools, tmp_path: Path
) -> None:
    """``restate state patch|clear`` and ``invocations restart-as-new`` (they need /query)."""
    srv, _ = env
    cli = RealCli(tools, srv, tmp_path)

    invoke(srv, "/Counter/k1/add", 7)
    assert cli("state", "get", "Counter", "k1", "--plain").strip() == '{"count":7}'
    patch = '[{"op":"replace","path":"/count","value":42}]'
    out = cli("state", "patch", "Counter", "k1", "--patch", patch, "--yes")
    assert "Successfully submitted state update." in out
    eventually(lambda: count(srv, "k1") == 42)
    out = cli("state", "clear", "Counter/k1", "--yes")
    assert "Enqueued successfully for processing" in out
    eventually(lambda: count(srv, "k1") == 0)

    greet_id, _ = invoke(srv, "/Greeter/greet", "CLI")
    out = cli("invocations", "restart-as-new", greet_id, "--yes")
    assert "[OK]: Restarted 1 invocations:" in out
    [new_id] = [word for word in out.split() if INVOCATION_ID.match(word) and word != greet_id]
    assert attach(srv, new_id) == "Hello, CLI!"
