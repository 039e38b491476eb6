"""Terminal error metadata (protocol V6 ``Failure.metadata``) end to end, on the TS SDK
(tests/e2e/ts_services/failer.mjs), against our server and the real restate-server 1.7.12:
the same expectations hold on both.

What the real server does: an invocation's failed outcome shows its metadata as a JSON
object sorted by key (ingress answer, attach/output, the caller's call completion); a run
completion and an awakeable rejection reach the handler with the keys in the SDK's order;
replays carry the metadata; without metadata the body has no ``metadata`` key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.endpoints import TsEndpoint
from tests.support.http import Response, get
from tests.support.server import RealRestateServerProcess, RestateServerProcess

Server = RestateServerProcess | RealRestateServerProcess

FAILER_APP = Path(__file__).resolve().parent / "ts_services" / "failer.mjs"
# short, so that the server suspends `replayed` during its sleep and resumes it by a replay
ENV = {"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "300ms"}

TEAPOT = {"reason": "teapot", "tier": "gold"}
# failer.mjs sends these keys in the order zeta, alpha, mid
UNORDERED = {"zeta": "1", "alpha": "", "mid": "é"}
SORTED = dict(sorted(UNORDERED.items()))


def _error(code: int, metadata: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": "bad"}
    if metadata is not None:
        body["metadata"] = metadata
    body["source"] = "invocation"
    return body


def _seen(code: int, metadata: dict[str, str]) -> dict[str, Any]:
    return {"message": "bad", "code": code, "metadata": metadata}


# handler -> (status, body); bodies compared as text, so key order counts
ANSWERS: dict[str, tuple[int, dict[str, Any]]] = {
    "fail": (418, _error(418, TEAPOT)),
    "viaCall": (200, _seen(418, TEAPOT)),
    "rethrow": (418, _error(418, TEAPOT)),
    "viaRun": (200, _seen(422, {"step": "run"})),
    "runThrows": (500, _error(500, {"step": "run"})),
    "failPlain": (418, _error(418)),
    "failUnordered": (400, _error(400, SORTED)),
    "viaCallUnordered": (200, _seen(400, SORTED)),
    "viaRunUnordered": (200, _seen(422, UNORDERED)),
    "viaAwakeable": (200, _seen(409, {"via": "awk"})),
    "viaAwakeableUnordered": (200, _seen(409, UNORDERED)),
    "awakeableFromOther": (200, _seen(409, UNORDERED)),
}


def _text(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _assert_failed(resp: Response, code: int, body: dict[str, Any]) -> None:
    assert (resp.status, resp.text()) == (code, _text(body))
    assert resp.headers["x-restate-error-source"] == "invocation"
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["x-restate-id"].startswith("inv_")


@pytest.fixture
def failer(ts_endpoint: Callable[..., TsEndpoint]) -> TsEndpoint:
    return ts_endpoint(FAILER_APP, name="failer")


@pytest.fixture(params=["ours", "real"])
def srv(
    request: pytest.FixtureRequest,
    server: Callable[..., RestateServerProcess],
    real_server: Callable[..., RealRestateServerProcess],
    failer: TsEndpoint,
) -> Server:
    started: Server = server(env=ENV) if request.param == "ours" else real_server(env=ENV)
    reg = started.register(failer.url)
    assert reg.status == 201, reg.text()
    return started


def test_handler_answers(srv: Server) -> None:
    for handler, (status, body) in ANSWERS.items():
        resp = srv.call(f"/Failer/{handler}", "bad")
        assert (handler, resp.status, resp.text()) == (handler, status, _text(body))
        if status != 200:
            assert resp.headers["x-restate-error-source"] == "invocation"


def test_replays_carry_the_metadata(srv: Server, failer: TsEndpoint) -> None:
    resp = srv.call("/Failer/replayed", "bad")
    assert resp.status == 200, resp.text()
    assert resp.text() == _text({"call": _seen(418, TEAPOT), "run": _seen(422, {"step": "run"})})
    # the answer came from a replay of the journal (the SDK logs it per invocation)
    invocation_id = resp.headers["x-restate-id"]
    replays = [
        line
        for line in failer.log_tail(400).splitlines()
        if invocation_id in line and "Replaying invocation" in line
    ]
    assert replays, failer.log_tail(40)


def _wait_output(url: str) -> Response:
    deadline = time.monotonic() + 20
    while True:
        resp = get(url)
        if resp.status != 470 or time.monotonic() > deadline:
            return resp
        time.sleep(0.05)


def test_attach_and_output_of_a_failed_invocation(srv: Server) -> None:
    ingress = srv.ingress_url
    teapot = _error(418, TEAPOT)
    resp = srv.call("/Failer/fail", "bad", headers={"idempotency-key": "k1"})
    _assert_failed(resp, 418, teapot)
    invocation_id = resp.headers["x-restate-id"]
    for path in (
        f"/restate/invocation/{invocation_id}/attach",
        f"/restate/invocation/{invocation_id}/output",
        "/restate/invocation/Failer/fail/k1/attach",
        "/restate/invocation/Failer/fail/k1/output",
    ):
        _assert_failed(get(ingress + path), 418, teapot)

    # sent, then read: the stored outcome keeps the metadata (sorted)
    sent = srv.call("/Failer/failUnordered/send", "bad", headers={"idempotency-key": "k2"})
    assert sent.status == 202, sent.text()
    unordered = _error(400, SORTED)
    _assert_failed(
        _wait_output(f"{ingress}/restate/invocation/Failer/failUnordered/k2/output"), 400, unordered
    )
    _assert_failed(
        get(f"{ingress}/restate/invocation/Failer/failUnordered/k2/attach"), 400, unordered
    )

    _assert_failed(srv.call("/FailerFlow/w1/run", "bad"), 418, teapot)
    _assert_failed(get(f"{ingress}/restate/workflow/FailerFlow/w1/attach"), 418, teapot)
    _assert_failed(get(f"{ingress}/restate/workflow/FailerFlow/w1/output"), 418, teapot)
    # a second run is refused by the server itself, without metadata
    again = srv.call("/FailerFlow/w1/run", "bad")
    assert (again.status, again.json()) == (
        409,
        {"code": 409, "message": "the workflow method was already invoked", "source": "invocation"},
    )
