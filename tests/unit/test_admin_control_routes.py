"""Admin control routes without sockets: ``POST /services/{name}/state``,
``PATCH /invocations/{id}/restart-as-new`` and ``/purge-journal``, called on the router.

Statuses and bodies were recorded from restate-server 1.7.12 (curl against the real
admin API, see docs/http-apis.md §2.4/§2.5 and the report of issue 11).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec

from restate_server.admin import AdminState, InvocationOutcome
from restate_server.admin.app import build_router
from restate_server.admin.invocations import RestartAsNewResult
from restate_server.http_server import Request, Response
from restate_server.schema import InMemoryMetadataStore, SchemaRegistry
from restate_server.schema import manifest as mf
from restate_server.schema.discovery import DiscoveryResult

INV = "inv_12JIMjdGnBaC5ZpQWo4EqsNpZFZ1806dKH"
NEW = "inv_12JIMjdGnBaC4PkJhfqqvUARWvdfagbGrD"
DP = "dp_10UDT2TKPXUQpxbRXeXPJfk"
MANIFEST = {
    "protocolMode": "BIDI_STREAM",
    "minProtocolVersion": 5,
    "maxProtocolVersion": 7,
    "services": [
        {"name": "Greeter", "ty": "SERVICE", "handlers": [{"name": "greet"}]},
        {
            "name": "Counter",
            "ty": "VIRTUAL_OBJECT",
            "handlers": [{"name": "add", "ty": "EXCLUSIVE"}, {"name": "get", "ty": "SHARED"}],
        },
    ],
}


class FakeControl:
    """Records what the routes asked for; answers with ``restart`` / ``outcome``."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.restart = RestartAsNewResult(InvocationOutcome.DONE, NEW)
        self.outcome = InvocationOutcome.DONE

    async def restart_as_new(
        self, invocation_id: str, copy_prefix_up_to: int, deployment: str
    ) -> RestartAsNewResult:
        self.calls.append(("restart", invocation_id, copy_prefix_up_to, deployment))
        return self.restart

    async def purge_journal(self, invocation_id: str) -> InvocationOutcome:
        self.calls.append(("purge_journal", invocation_id))
        return self.outcome

    async def modify_state(
        self, service: str, key: str, new_state: dict[str, bytes], version: str | None
    ) -> None:
        self.calls.append(("state", service, key, new_state, version))


def make_state(control: FakeControl | None) -> AdminState:
    registry = SchemaRegistry(InMemoryMetadataStore())
    endpoint = mf.decode_manifest(json.dumps(MANIFEST).encode())
    discovery = DiscoveryResult(
        protocol_type="BidiStream",
        http_version="HTTP/2.0",
        min_protocol_version=5,
        max_protocol_version=7,
        sdk_version=None,
        manifest_version=3,
        services=endpoint.services,
    )
    registry.apply_registration("http://127.0.0.1:9080/", discovery)

    async def no_discovery(uri: str, **kwargs: Any) -> DiscoveryResult:
        raise AssertionError("no discovery in these tests")

    return AdminState(registry=registry, discover=no_discovery, invocations=control)  # type: ignore[arg-type]


async def send(state: AdminState, method: str, path: str, body: Any = None) -> Response:
    headers: list[tuple[bytes, bytes]] = []
    raw = b""
    if body is not None:
        raw = msgspec.json.encode(body)
        headers.append((b"content-type", b"application/json"))
    return await build_router(state).dispatch(Request(method, path, headers, raw))


def error(message: str) -> dict[str, Any]:
    return {"message": message, "restate_code": None}


def decoded(response: Response) -> Any:
    return json.loads(response.body) if response.body else None


# ---------------------------------------------------------------- state


async def test_state_patch_is_accepted_with_an_empty_body() -> None:
    control = FakeControl()
    state = make_state(control)
    body = {"object_key": "k1", "new_state": {"count": [52, 50], "last": "x"}, "version": "v1"}
    response = await send(state, "POST", "/v4/services/Counter/state", body)
    assert (response.status, response.body) == (202, b"")
    assert control.calls == [("state", "Counter", "k1", {"count": b"42", "last": b"x"}, "v1")]


async def test_state_of_a_plain_service_or_unknown_service() -> None:
    control = FakeControl()
    state = make_state(control)
    response = await send(
        state, "POST", "/services/Greeter/state", {"object_key": "k", "new_state": {"a": "b"}}
    )
    assert (response.status, decoded(response)) == (
        400,
        error("Cannot modify state for service type Service"),
    )
    response = await send(
        state, "POST", "/services/Nope/state", {"object_key": "k", "new_state": {"a": "b"}}
    )
    assert (response.status, decoded(response)) == (
        404,
        error("The requested service 'Nope' does not exist"),
    )
    # clearing the state of a service that is gone stays possible
    response = await send(
        state, "POST", "/services/Nope/state", {"object_key": "k", "new_state": {}}
    )
    assert response.status == 202
    assert control.calls == [("state", "Nope", "k", {}, None)]


async def test_state_body_errors_are_the_frameworks() -> None:
    state = make_state(FakeControl())
    cases = [
        (
            {"object_key": "k", "new_state": {"a": 5}},
            "new_state.a: invalid type: integer `5`, expected byte array",
        ),
        (
            {"object_key": "k", "new_state": {"a": [300]}},
            "new_state.a[0]: invalid value: integer `300`, expected u8",
        ),
        ({"new_state": {}}, "missing field `object_key`"),
    ]
    for body, detail in cases:
        response = await send(state, "POST", "/services/Counter/state", body)
        assert response.status == 422
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        text = response.body.decode()
        assert text == f"Failed to deserialize the JSON body into the target type: {detail}"


async def test_scoped_state_is_accepted_but_not_applied() -> None:
    control = FakeControl()
    response = await send(
        make_state(control),
        "POST",
        "/services/Counter/state",
        {"object_key": "k", "new_state": {}, "scope": "x"},
    )
    assert response.status == 202 and control.calls == []


async def test_without_a_partition_handle_the_routes_answer_501() -> None:
    state = make_state(None)
    response = await send(
        state, "POST", "/services/Counter/state", {"object_key": "k", "new_state": {}}
    )
    assert response.status == 501
    assert (await send(state, "PATCH", f"/invocations/{INV}/restart-as-new")).status == 501
    assert (await send(state, "PATCH", f"/invocations/{INV}/purge-journal")).status == 501


# ---------------------------------------------------------------- restart-as-new


async def test_restart_as_new_answers_the_new_id() -> None:
    control = FakeControl()
    state = make_state(control)
    response = await send(state, "PATCH", f"/v4/invocations/{INV}/restart-as-new")
    assert (response.status, decoded(response)) == (200, {"new_invocation_id": NEW})
    assert response.headers["content-type"] == "application/json"
    for query, expected in [
        ("?from=3", (3, "latest")),
        ("?from=01&deployment=Keep", (1, "keep")),
        ("?deployment=keep", (0, "keep")),
        ("?deployment=Latest", (0, "latest")),
        (f"?deployment={DP}", (0, DP)),
        ("?from=%2B2&other=x", (2, "latest")),
    ]:
        control.calls.clear()
        assert (
            await send(state, "PATCH", f"/invocations/{INV}/restart-as-new{query}")
        ).status == 200
        assert control.calls == [("restart", INV, *expected)], query


async def test_restart_as_new_query_errors() -> None:
    control = FakeControl()
    state = make_state(control)
    text_cases = [
        ("?from=abc", "from: invalid digit found in string"),
        ("?from=-1", "from: invalid digit found in string"),
        ("?from=+1", "from: invalid digit found in string"),  # '+' is a space in a query
        ("?from=", "from: cannot parse integer from empty string"),
        ("?from=99999999999", "from: number too large to fit in target type"),
        ("?from=1&from=2", "duplicate field `from`"),
    ]
    for query, detail in text_cases:
        response = await send(state, "PATCH", f"/invocations/{INV}/restart-as-new{query}")
        assert response.status == 400, query
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        assert response.body.decode() == f"Failed to deserialize query string: {detail}"
    json_cases = [
        ("dp_bad", "unrecognized codec version"),
        ("nope", "bad format"),
        ("KEEP", "bad format"),
        ("", "bad length"),
    ]
    for value, reason in json_cases:
        response = await send(
            state, "PATCH", f"/invocations/{INV}/restart-as-new?deployment={value}"
        )
        assert (response.status, decoded(response)) == (
            400,
            error(f"The query parameter 'deployment' is invalid. Reason: {reason}"),
        )
    response = await send(state, "PATCH", "/invocations/inv_bad/restart-as-new")
    assert (response.status, decoded(response)) == (
        400,
        error("The request field 'invocation_id' is invalid. Reason: unrecognized codec version"),
    )
    assert control.calls == []


async def test_restart_as_new_refusals() -> None:
    control = FakeControl()
    state = make_state(control)
    quoted = f"'{INV}'"
    cases = [
        (InvocationOutcome.NOT_FOUND, 404, f"The requested invocation {quoted} does not exist"),
        (InvocationOutcome.STILL_RUNNING, 409, f"The invocation {quoted} is still running."),
        (
            InvocationOutcome.NOT_STARTED,
            425,
            f"The invocation {quoted} cannot be restarted because it's not running yet.",
        ),
        (
            InvocationOutcome.INPUT_UNAVAILABLE,
            410,
            f"The invocation {quoted} cannot be restarted because the input is not available. "
            "This indicates that the journal was already purged, or not retained at all.",
        ),
        (
            InvocationOutcome.UNSUPPORTED,
            422,
            f"Restarting the invocation {quoted} is not supported. Restarting workflows is not "
            "supported, and restarting invocations created using the old service protocol.",
        ),
        (
            InvocationOutcome.DEPLOYMENT_NOT_FOUND,
            400,
            "The given deployment was not found when trying to restart as new the invocation "
            f"{quoted}.",
        ),
        (
            InvocationOutcome.JOURNAL_INDEX_OUT_OF_RANGE,
            400,
            f"The given index is out of range of currently stored journal for invocation {quoted}.",
        ),
        (
            InvocationOutcome.JOURNAL_COPY_RANGE_INVALID,
            400,
            f"The prefix of the journal {quoted} up to 'from' (included) contains some Commands "
            "without respective Completions.",
        ),
    ]
    for outcome, status, message in cases:
        control.restart = RestartAsNewResult(outcome)
        response = await send(state, "PATCH", f"/invocations/{INV}/restart-as-new")
        assert (response.status, decoded(response)) == (status, error(message)), outcome
    control.restart = RestartAsNewResult(
        InvocationOutcome.INCOMPATIBLE_DEPLOYMENT,
        details={
            "pinned_protocol_version": 6,
            "deployment_id": DP,
            "min_protocol_version": 7,
            "max_protocol_version": 7,
        },
    )
    response = await send(state, "PATCH", f"/invocations/{INV}/restart-as-new?deployment={DP}")
    assert (response.status, decoded(response)) == (
        400,
        error(
            f"The invocation {quoted} is running on protocol version '6', while the chosen "
            f"deployment '{DP}' supports the range 7..=7."
        ),
    )


# ---------------------------------------------------------------- purge-journal


async def test_purge_journal() -> None:
    control = FakeControl()
    state = make_state(control)
    response = await send(state, "PATCH", f"/invocations/{INV}/purge-journal")
    assert (response.status, response.body) == (200, b"")
    control.outcome = InvocationOutcome.NOT_COMPLETED
    response = await send(state, "PATCH", f"/invocations/{INV}/purge-journal")
    assert (response.status, decoded(response)) == (
        409,
        error(f"The invocation '{INV}' is not yet completed."),
    )
    control.outcome = InvocationOutcome.NOT_FOUND
    response = await send(state, "PATCH", f"/invocations/{INV}/purge-journal")
    assert response.status == 404
