"""Admin API in-process (our HTTP server on a loopback port, an aiohttp client) against
fake and real SDK endpoints.

The fake endpoint is an aiohttp app on a loopback port answering ``/{case}/discover``;
registrations use HTTP/1.1 there (``use_http_11``) through the default discovery client.
Statuses, bodies and headers expected here were recorded from restate-server 1.7.12.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import restate
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from restate_server.admin import AdminState, InvocationOutcome, create_admin_handler
from restate_server.http_server import serve
from restate_server.schema import InMemoryMetadataStore, SchemaRegistry, discover

CT4 = "application/vnd.restate.endpointmanifest.v4+json"
DP_UNKNOWN = "dp_10UDT2TKPXUQpxbRXeXPJfk"
INV = "inv_12JIMjdGnBaC5ZpQWo4EqsNpZFZ1806dKH"

GREETER = {
    "name": "Greeter",
    "ty": "SERVICE",
    "handlers": [
        {
            "name": "greet",
            "input": {"required": False, "contentType": "application/json"},
            "output": {"setContentTypeIfEmpty": False, "contentType": "application/json"},
        },
        {
            "name": "rawEcho",
            "input": {"contentType": "application/octet-stream"},
            "output": {"contentType": "application/octet-stream"},
        },
    ],
}
COUNTER = {
    "name": "Counter",
    "ty": "VIRTUAL_OBJECT",
    "handlers": [{"name": "add", "ty": "EXCLUSIVE"}, {"name": "get", "ty": "SHARED"}],
}
SIGNUP = {
    "name": "Signup",
    "ty": "WORKFLOW",
    "handlers": [{"name": "run", "ty": "WORKFLOW"}, {"name": "confirm", "ty": "SHARED"}],
}
DEFAULT_RETRY = {
    "initial_interval": "500ms",
    "exponentiation_factor": 2.0,
    "max_attempts": 70,
    "max_interval": "1m",
    "on_max_attempts": "Pause",
}


def manifest(*services: dict[str, Any], **top: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "protocolMode": "BIDI_STREAM",
        "minProtocolVersion": 5,
        "maxProtocolVersion": 7,
        "services": list(services),
    }
    body.update(top)
    return body


class FakeEndpoint:
    """``GET /{case}/discover`` answers ``cases[case]`` = (status, content type, body)."""

    def __init__(self) -> None:
        self.cases: dict[str, tuple[int, str | None, Any]] = {}
        self.requests: list[Any] = []
        app = web.Application()
        app.router.add_get("/{case}/discover", self._discover)
        self.server = TestServer(app, host="127.0.0.1")

    async def _discover(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.headers.copy())
        status, content_type, body = self.cases[request.match_info["case"]]
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = web.Response(status=status, body=raw)
        response.headers["x-restate-server"] = "fake-sdk/0.1"
        if content_type is not None:
            response.headers["content-type"] = content_type
        return response

    def uri(self, case: str) -> str:
        return f"http://127.0.0.1:{self.server.port}/{case}"


@pytest.fixture
async def endpoint() -> AsyncIterator[FakeEndpoint]:
    fake = FakeEndpoint()
    await fake.server.start_server()
    yield fake
    await fake.server.close()


class FakeInvocations:
    def __init__(self) -> None:
        self.outcomes: dict[str, InvocationOutcome] = {}
        self.calls: list[tuple[str, str]] = []

    async def _do(self, op: str, invocation_id: str) -> InvocationOutcome:
        self.calls.append((op, invocation_id))
        return self.outcomes.get(op, InvocationOutcome.DONE)

    async def cancel(self, invocation_id: str) -> InvocationOutcome:
        return await self._do("cancel", invocation_id)

    async def kill(self, invocation_id: str) -> InvocationOutcome:
        return await self._do("kill", invocation_id)

    async def purge(self, invocation_id: str) -> InvocationOutcome:
        return await self._do("purge", invocation_id)

    async def pause(self, invocation_id: str) -> InvocationOutcome:
        return await self._do("pause", invocation_id)

    async def resume(self, invocation_id: str, deployment: str | None = None) -> InvocationOutcome:
        return await self._do("resume", invocation_id)

    async def modify_state(
        self, service: str, key: str, new_state: dict[str, bytes], version: str | None
    ) -> None:
        self.calls.append(("state", f"{service}/{key}={sorted(new_state.items())}"))


def make_state(**kw: Any) -> AdminState:
    registry = SchemaRegistry(InMemoryMetadataStore())
    return AdminState(
        registry=registry,
        discover=lambda uri, **k: discover(uri, retry_delays=(0.01, 0.01), **k),
        ingress_endpoint="http://127.0.0.1:8080/",
        **kw,
    )


AdminClient = ClientSession


@contextlib.asynccontextmanager
async def admin_client(state: AdminState) -> AsyncIterator[AdminClient]:
    server = await serve(create_admin_handler(state), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with ClientSession(f"http://127.0.0.1:{port}") as session:
            yield session
    finally:
        server.close()


@pytest.fixture
async def client() -> AsyncIterator[AdminClient]:
    async with admin_client(make_state()) as session:
        yield session


async def register(
    client: AdminClient, uri: str, path: str = "/deployments", **fields: Any
) -> tuple[int, Any, Any]:
    body = {"uri": uri, "use_http_11": True, **fields}
    response = await client.post(path, json=body)
    text = await response.text()
    return response.status, response.headers, json.loads(text) if text else None


def service_names(body: dict[str, Any]) -> list[str]:
    return sorted(s["name"] for s in body["services"])


# ---------------------------------------------------------------- registration


async def test_register_list_describe(client: AdminClient, endpoint: FakeEndpoint) -> None:
    endpoint.cases["app"] = (200, CT4, manifest(GREETER, COUNTER, SIGNUP))
    status, headers, body = await register(client, endpoint.uri("app"))
    assert status == 201
    dp = body["id"]
    assert headers["location"] == f"deployments/{dp}"
    assert headers["content-type"] == "application/json"
    assert list(body) == [
        "id",
        "services",
        "min_protocol_version",
        "max_protocol_version",
        "sdk_version",
    ]
    assert body["sdk_version"] == "fake-sdk/0.1"
    assert service_names(body) == ["Counter", "Greeter", "Signup"]
    # the discovery request carried the real headers
    sent = endpoint.requests[0]
    assert sent["Accept"].startswith("application/vnd.restate.endpointmanifest.v1+json, ")
    assert sent["x-restate-cluster-name"] == "localcluster"

    listing = await (await client.get("/deployments")).json()
    [entry] = listing["deployments"]
    assert list(entry) == [
        "id",
        "uri",
        "protocol_type",
        "http_version",
        "created_at",
        "min_protocol_version",
        "max_protocol_version",
        "sdk_version",
        "services",
    ]
    assert entry["uri"] == endpoint.uri("app")
    assert (entry["protocol_type"], entry["http_version"]) == ("BidiStream", "HTTP/1.1")
    assert entry["created_at"].endswith("000000Z") and entry["created_at"][10] == "T"
    assert sorted(entry["services"], key=lambda s: s["name"]) == [
        {"name": "Counter", "revision": 1},
        {"name": "Greeter", "revision": 1},
        {"name": "Signup", "revision": 1},
    ]

    detail = await (await client.get(f"/v4/deployments/{dp}")).json()
    assert detail["id"] == dp and service_names(detail) == ["Counter", "Greeter", "Signup"]
    assert all("handlers" in s for s in detail["services"])


async def test_service_metadata_shapes(client: AdminClient, endpoint: FakeEndpoint) -> None:
    endpoint.cases["app"] = (200, CT4, manifest(GREETER, COUNTER, SIGNUP))
    _, _, body = await register(client, endpoint.uri("app"))
    dp = body["id"]
    signup = await (await client.get("/services/Signup")).json()
    assert signup == {
        "name": "Signup",
        "ty": "Workflow",
        "handlers": [
            {
                "name": "run",
                "ty": "Workflow",
                "public": True,
                "input_description": "*/*",
                "output_description": "application/json",
                "retry_policy": {"max_attempts": None},
            },
            {
                "name": "confirm",
                "ty": "Shared",
                "public": True,
                "input_description": "*/*",
                "output_description": "application/json",
                "retry_policy": {"max_attempts": None},
            },
        ],
        "deployment_id": dp,
        "revision": 1,
        "public": True,
        "idempotency_retention": "1d",
        "workflow_completion_retention": "1d",
        "journal_retention": "1d",
        "inactivity_timeout": "1m",
        "abort_timeout": "10m",
        "enable_lazy_state": False,
        "retry_policy": DEFAULT_RETRY,
    }
    greeter = await (await client.get("/services/Greeter")).json()
    assert greeter["ty"] == "Service" and "workflow_completion_retention" not in greeter
    # handler ``ty`` is omitted for plain services
    assert greeter["handlers"][0] == {
        "name": "greet",
        "public": True,
        "input_description": "application/json",
        "output_description": "application/json",
        "retry_policy": {"max_attempts": None},
    }
    assert greeter["handlers"][1]["input_description"] == "application/octet-stream"
    services = await (await client.get("/v4/services")).json()
    assert [s["name"] for s in services["services"]] == ["Counter", "Greeter", "Signup"]
    handlers = await (await client.get("/services/Counter/handlers")).json()
    assert [(h["name"], h["ty"]) for h in handlers["handlers"]] == [
        ("add", "Exclusive"),
        ("get", "Shared"),
    ]
    add = await (await client.get("/services/Counter/handlers/add")).json()
    assert add == {
        "name": "add",
        "ty": "Exclusive",
        "public": True,
        "input_description": "*/*",
        "output_description": "application/json",
        "retry_policy": {"max_attempts": None},
    }
    response = await client.get("/services/Counter/handlers/nope")
    assert response.status == 404
    assert await response.json() == {
        "message": "The requested handler 'nope' on service 'Counter' does not exist",
        "restate_code": None,
    }
    response = await client.get("/services/Nope")
    assert (response.status, await response.json()) == (
        404,
        {"message": "The requested service 'Nope' does not exist", "restate_code": None},
    )
    openapi = await (await client.get("/services/Counter/openapi")).json()
    assert openapi["openapi"] == "3.1.0" and "/restate/call/Counter/{key}/add" in openapi["paths"]


async def test_rich_manifest_overrides_and_request_response(
    client: AdminClient, endpoint: FakeEndpoint
) -> None:
    rich = {
        "name": "Rich",
        "ty": "WORKFLOW",
        "documentation": "doc",
        "metadata": {"a": "b"},
        "inactivityTimeout": 90000,
        "abortTimeout": 1000,
        "journalRetention": 3600000,
        "idempotencyRetention": 7200000,
        "enableLazyState": True,
        "retryPolicyInitialInterval": 250,
        "retryPolicyMaxAttempts": 5,
        "retryPolicyOnMaxAttempts": "KILL",
        "retryPolicyExponentiationFactor": 3.0,
        "retryPolicyMaxInterval": 10000,
        "handlers": [
            {
                "name": "run",
                "ty": "WORKFLOW",
                "workflowCompletionRetention": 172800000,
                "input": {
                    "required": True,
                    "contentType": "application/json",
                    "jsonSchema": {"type": "string"},
                },
                "output": {
                    "contentType": "application/json",
                    "jsonSchema": {"title": "Out", "type": "object"},
                },
                "documentation": "hdoc",
                "metadata": {"x": "y"},
                "inactivityTimeout": 5000,
                "abortTimeout": 6000,
                "journalRetention": 7000,
                "enableLazyState": False,
                "ingressPrivate": True,
                "retryPolicyInitialInterval": 100,
                "retryPolicyMaxAttempts": 3,
                "retryPolicyOnMaxAttempts": "PAUSE",
                "retryPolicyExponentiationFactor": 1.5,
                "retryPolicyMaxInterval": 2000,
            },
        ],
    }
    endpoint.cases["rich"] = (200, CT4, manifest(rich, protocolMode="REQUEST_RESPONSE"))
    status, _, body = await register(client, endpoint.uri("rich"))
    assert status == 201
    [service] = body["services"]
    # recorded from restate-server 1.7.12 with the same manifest
    assert service == {
        "name": "Rich",
        "ty": "Workflow",
        "handlers": [
            {
                "name": "run",
                "ty": "Workflow",
                "documentation": "hdoc",
                "metadata": {"x": "y"},
                "journal_retention": "7s",
                "abort_timeout": "6s",
                "enable_lazy_state": False,
                "public": False,
                "input_description": "JSON string",
                "output_description": "JSON 'Out'",
                "input_json_schema": {"type": "string"},
                "output_json_schema": {"title": "Out", "type": "object"},
                "retry_policy": {
                    "initial_interval": "100ms",
                    "exponentiation_factor": 1.5,
                    "max_attempts": 3,
                    "max_interval": "2s",
                    "on_max_attempts": "Pause",
                },
                "info": [
                    {
                        "code": "RT0021",
                        "message": "The configured inactivity_timeout 5s will "
                        "not be applied because the handler is exposed in Request/Response "
                        "mode.",
                    }
                ],
            }
        ],
        "documentation": "doc",
        "metadata": {"a": "b"},
        "deployment_id": body["id"],
        "revision": 1,
        "public": True,
        "idempotency_retention": "2h",
        "workflow_completion_retention": "2d",
        "journal_retention": "1h",
        "inactivity_timeout": "0s",
        "abort_timeout": "1s",
        "enable_lazy_state": True,
        "retry_policy": {
            "initial_interval": "250ms",
            "exponentiation_factor": 3.0,
            "max_attempts": 5,
            "max_interval": "10s",
            "on_max_attempts": "Kill",
        },
        "info": [
            {
                "code": "RT0021",
                "message": "The configured inactivity_timeout 1m 30s will not "
                "be applied because the service is exposed in Request/Response mode.",
            }
        ],
    }


async def test_force_dry_run_and_api_versions(client: AdminClient, endpoint: FakeEndpoint) -> None:
    endpoint.cases["app"] = (200, CT4, manifest(GREETER))
    uri = endpoint.uri("app")
    # dry run of a new deployment: 201 with a throw-away id, nothing kept
    status, _, dry = await register(client, uri, path="/v4/deployments", dry_run=True)
    assert status == 201
    assert (await (await client.get("/deployments")).json()) == {"deployments": []}
    status, _, created = await register(client, uri, path="/v4/deployments", force=False)
    assert status == 201 and created["id"] != dry["id"]
    dp = created["id"]
    calls = len(endpoint.requests)
    # same URI again, no force: 200, unchanged, the endpoint is not even contacted
    for path in ("/deployments", "/v3/deployments", "/v4/deployments"):
        status, headers, body = await register(client, uri, path=path)
        assert (status, body["id"], headers["location"]) == (200, dp, f"deployments/{dp}")
        assert body["services"][0]["revision"] == 1
    assert len(endpoint.requests) == calls
    # force with dry run shows the next revision without applying it
    status, _, body = await register(client, uri, force=True, dry_run=True)
    assert (status, body["id"], body["services"][0]["revision"]) == (200, dp, 2)
    assert (await (await client.get("/services/Greeter")).json())["revision"] == 1
    # force: overwritten in place, revision +1 even without changes
    status, _, body = await register(client, uri, force=True)
    assert (status, body["id"], body["services"][0]["revision"]) == (200, dp, 2)
    # /v2: an omitted force means true (201, revision +1); explicit false is a conflict
    status, _, body = await register(client, uri, path="/v2/deployments")
    assert (status, body["services"][0]["revision"]) == (201, 3)
    status, _, body = await register(client, uri, path="/v2/deployments", force=False)
    assert status == 409
    assert body == {"message": f"Conflict: deployment {dp} already exists", "restate_code": None}


async def test_breaking_change(client: AdminClient, endpoint: FakeEndpoint) -> None:
    endpoint.cases["v1"] = (200, CT4, manifest(GREETER))
    endpoint.cases["v2"] = (
        200,
        CT4,
        manifest({"name": "Greeter", "ty": "VIRTUAL_OBJECT", "handlers": [{"name": "x"}]}),
    )
    await register(client, endpoint.uri("v1"))
    status, _, body = await register(client, endpoint.uri("v2"), dry_run=True)
    assert status == 409
    assert body == {
        "message": "[META0006] detected a new service revision for 'Greeter' changing the "
        "service type from previous revision. Service type cannot be changed across revisions.",
        "restate_code": "META0006",
    }
    status, _, body = await register(client, endpoint.uri("v2"), breaking=True)
    assert status == 201
    assert (body["services"][0]["ty"], body["services"][0]["revision"]) == ("VirtualObject", 2)


async def test_registration_errors(client: AdminClient, endpoint: FakeEndpoint) -> None:
    greeter = manifest(GREETER)
    endpoint.cases.update(
        {
            "garbage": (200, CT4, b"this is not json"),
            "wrongct": (200, "application/json", greeter),
            "notfound": (404, "text/plain", b"nope"),
            "versions84": (200, CT4, manifest(GREETER, minProtocolVersion=8, maxProtocolVersion=4)),
            "versions89": (200, CT4, manifest(GREETER, minProtocolVersion=8, maxProtocolVersion=9)),
            "reserved": (200, CT4, manifest({"name": "restateX", "ty": "SERVICE", "handlers": []})),
            "wfidem": (
                200,
                CT4,
                manifest(
                    {
                        "name": "Wf",
                        "ty": "WORKFLOW",
                        "handlers": [
                            {"name": "run", "ty": "WORKFLOW", "idempotencyRetention": 1000}
                        ],
                    }
                ),
            ),
        }
    )
    expectations = {
        "garbage": (500, None, "received a bad response from the SDK that cannot be decoded: "),
        "wrongct": (
            500,
            "META0013",
            "[META0013] [META0013] received a bad response from the SDK: "
            'Bad content type header: "application/json". Expected one of',
        ),
        "notfound": (
            500,
            "META0003",
            "[META0003] [META0003] got status code '404'. Make sure the "
            "provided URI has the correct path where the Restate SDK endpoint is mounted.",
        ),
        "versions84": (
            500,
            "META0013",
            "[META0013] [META0013] received a bad response from the "
            "SDK: Expected min protocol version to be <= max protocol version. Received "
            "min protocol version '8', max protocol version '4'",
        ),
        "versions89": (
            500,
            "META0012",
            "[META0012] [META0012] unsupported service protocol "
            "versions: [8, 9]. Supported versions by this runtime are [5, 7]. Please "
            "upgrade the SDK and try registering again.",
        ),
        "reserved": (
            400,
            "META0005",
            "[META0005] cannot insert/modify service 'restateX' as it contains a reserved name",
        ),
        "wfidem": (400, None, "run sets the idempotency_retention, but it's a WORKFLOW handler"),
    }
    for case, (status, code, message) in expectations.items():
        got_status, headers, body = await register(client, endpoint.uri(case))
        assert (case, got_status) == (case, status)
        assert headers["content-type"] == "application/json"
        assert body["restate_code"] == code and body["message"].startswith(message), case
    assert (await (await client.get("/deployments")).json()) == {"deployments": []}


async def test_unreachable_endpoint_fails_fast(client: AdminClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    status, _, body = await register(client, f"http://127.0.0.1:{port}")
    assert time.monotonic() - started < 5
    assert status == 500 and body["restate_code"] == "META0003"
    assert body["message"] == (
        f"[META0003] [META0003] error when calling 'http://127.0.0.1:{port}/': unable to reach "
        "the remote endpoint.\nReason: client error (Connect) caused by: tcp connect error caused "
        "by: Connection refused (os error 111)"
    )


async def test_request_extraction_errors(client: AdminClient) -> None:
    async def post(
        body: bytes, content_type: str | None = "application/json"
    ) -> tuple[int, str, str]:
        headers = {} if content_type is None else {"content-type": content_type}
        response = await client.post("/deployments", data=body, headers=headers)
        return response.status, response.headers.get("content-type", ""), await response.text()

    text = "text/plain; charset=utf-8"
    untagged = (
        "Failed to deserialize the JSON body into the target type: data did not match "
        "any variant of untagged enum RegisterDeploymentRequest"
    )
    assert await post(b'{"uri": "http://x:1"}', None) == (
        415,
        text,
        "Expected request with `Content-Type: application/json`",
    )
    assert await post(b"{}") == (422, text, untagged)
    assert await post(b'{"uri": "not a uri"}') == (422, text, untagged)
    assert await post(b'{"uri": "http://x:1", "force": "yes"}') == (422, text, untagged)
    assert await post(b'{"uri": "http://x:1", "additional_headers": {"bad h": "x"}}') == (
        422,
        text,
        untagged,
    )
    status, content_type, body = await post(b"notjson")
    assert (status, content_type) == (400, text)
    assert body.startswith("Failed to parse the request body as JSON: ")
    status, content_type, body = await post(b'{"uri": "127.0.0.1:9080"}')
    assert (status, content_type) == (400, "application/json")
    assert json.loads(body) == {
        "message": "The request field 'uri' is invalid. Reason: The provided uri 127.0.0.1:9080 "
        "is not absolute, only absolute URIs can be used.",
        "restate_code": None,
    }
    response = await client.get("/deployments/not-an-id")
    assert (response.status, response.headers["content-type"], await response.text()) == (
        400,
        text,
        "Invalid URL: Cannot parse `deployment` with value `not-an-id`: bad format",
    )
    response = await client.get(f"/deployments/{DP_UNKNOWN}")
    assert (response.status, await response.json()) == (
        404,
        {
            "message": f"The requested deployment '{DP_UNKNOWN}' does not exist",
            "restate_code": None,
        },
    )


async def test_additional_headers_and_metadata(client: AdminClient, endpoint: FakeEndpoint) -> None:
    endpoint.cases["app"] = (200, CT4, manifest(GREETER))
    status, _, _ = await register(
        client, endpoint.uri("app"), additional_headers={"X-Token": "t"}, metadata={"k": "v"}
    )
    assert status == 201
    assert endpoint.requests[-1]["X-Token"] == "t"
    [entry] = (await (await client.get("/deployments")).json())["deployments"]
    assert entry["additional_headers"] == {"x-token": "t"} and entry["metadata"] == {"k": "v"}
    assert list(entry)[3:6] == ["http_version", "additional_headers", "metadata"]


async def test_update_deployment(client: AdminClient, endpoint: FakeEndpoint) -> None:
    endpoint.cases["a"] = (200, CT4, manifest(GREETER))
    endpoint.cases["b"] = (200, CT4, manifest(GREETER))
    _, _, body = await register(client, endpoint.uri("a"))
    dp = body["id"]
    response = await client.patch(
        f"/deployments/{dp}",
        json={"uri": endpoint.uri("b"), "use_http_11": True, "additional_headers": {"x-a": "b"}},
    )
    detail = await response.json()
    assert response.status == 200 and detail["uri"] == endpoint.uri("b")
    assert detail["additional_headers"] == {"x-a": "b"} and detail["services"][0]["revision"] == 1
    response = await client.put(f"/v4/deployments/{dp}", json={})
    assert (response.status, await response.json()) == (
        405,
        {"message": "PUT deployment is deprecated, use PATCH instead", "restate_code": None},
    )


async def test_delete_deployment(client: AdminClient, endpoint: FakeEndpoint) -> None:
    endpoint.cases["app"] = (200, CT4, manifest(GREETER))
    _, _, body = await register(client, endpoint.uri("app"))
    dp = body["id"]
    for query in ("", "?force=false"):
        response = await client.delete(f"/deployments/{dp}{query}")
        assert (response.status, await response.read()) == (501, b"")
    response = await client.delete(f"/deployments/{dp}?force=yes")
    assert response.status == 400 and (await response.text()).startswith(
        "Failed to deserialize query string: force:"
    )
    response = await client.delete(f"/v4/deployments/{dp}?force=true")
    assert (response.status, await response.read()) == (202, b"")
    assert (await client.get("/services/Greeter")).status == 404
    response = await client.delete(f"/deployments/{dp}?force=true")
    assert (response.status, await response.json()) == (
        404,
        {
            "message": f"not found in the schema registry: deployment with id '{dp}'",
            "restate_code": None,
        },
    )


async def test_modify_service(client: AdminClient, endpoint: FakeEndpoint) -> None:
    endpoint.cases["app"] = (200, CT4, manifest(GREETER, COUNTER))
    await register(client, endpoint.uri("app"))
    # what `restate services config patch` sends
    response = await client.patch(
        "/v4/services/Counter",
        json={
            "public": None,
            "idempotency_retention": "2h",
            "workflow_completion_retention": None,
            "journal_retention": "PT1H",
            "inactivity_timeout": "1m 30s",
            "abort_timeout": None,
        },
    )
    body = await response.json()
    assert response.status == 200
    assert (
        body["idempotency_retention"],
        body["journal_retention"],
        body["inactivity_timeout"],
        body["revision"],
    ) == ("2h", "1h", "1m 30s", 1)
    response = await client.patch("/services/Counter", json={"public": False})
    body = await response.json()
    assert body["public"] is False and all(h["public"] is False for h in body["handlers"])
    response = await client.patch("/services/Counter", json={"workflow_completion_retention": "2d"})
    assert (response.status, await response.json()) == (
        400,
        {
            "message": "modifying retention time for service type VirtualObject is unsupported",
            "restate_code": None,
        },
    )
    response = await client.patch("/services/Counter", json={"idempotency_retention": "banana"})
    assert response.status == 422 and (await response.text()).startswith(
        "Failed to deserialize the JSON body into the target type: idempotency_retention: "
        'failed to parse input in the "friendly" duration format'
    )
    response = await client.patch("/services/Counter", json={"public": "x"})
    assert (response.status, await response.text()) == (
        422,
        "Failed to deserialize the JSON body into the target type: public: invalid type: "
        'string "x", expected a boolean',
    )
    response = await client.patch("/services/Nope", json={"public": True})
    assert (response.status, await response.json()) == (
        404,
        {
            "message": "not found in the schema registry: service with name 'Nope'",
            "restate_code": None,
        },
    )
    response = await client.patch("/services/Counter", data=b"{}")
    assert response.status == 415
    # re-registration (new revision) resets the patched settings to what the SDK declares
    await register(client, endpoint.uri("app"), force=True)
    body = await (await client.get("/services/Counter")).json()
    assert (body["revision"], body["public"], body["idempotency_retention"]) == (2, True, "1d")


# ---------------------------------------------------------------- routing and misc


async def test_versions_health_and_routing(client: AdminClient) -> None:
    response = await client.get("/version")
    body = await response.json()
    assert body["version"] == "1.7.12"
    assert (body["min_admin_api_version"], body["max_admin_api_version"]) == (2, 4)
    assert body["ingress_endpoint"] == "http://127.0.0.1:8080/"
    assert body["features"]["protocol_v7"] is False
    for path in ("/health", "/v2/health", "/v3/health", "/v4/health"):
        response = await client.get(path)
        assert (response.status, await response.read()) == (200, b"")
    response = await client.get("/v1/deployments")
    assert (response.status, response.headers["content-type"], await response.text()) == (
        400,
        "text/plain; charset=utf-8",
        "Unsupported Admin API version V1. This server supports versions between V2 and V4.",
    )
    for path in (
        "/v5/deployments",
        "/nope",
        "/services/",
        "/v4/",
        f"/invocations/{INV}/frobnicate",
    ):
        response = await client.get(path)
        assert (path, response.status, await response.read()) == (path, 404, b"")
    for method, path, allow in [
        ("PUT", "/deployments", "GET,HEAD,POST"),
        ("POST", f"/deployments/{DP_UNKNOWN}", "GET,HEAD,DELETE,PATCH,PUT"),
        ("DELETE", "/services/Greeter", "GET,HEAD,PATCH"),
        ("POST", "/health", "GET,HEAD"),
        ("GET", f"/invocations/{INV}", "DELETE"),
        ("DELETE", "/subscriptions", "POST,GET,HEAD"),
    ]:
        response = await client.request(method, path)
        assert (path, response.status, response.headers.get("allow"), await response.read()) == (
            path,
            405,
            allow,
            b"",
        )
    response = await client.get("/", allow_redirects=False)
    assert (response.status, response.headers["location"]) == (308, "/ui/")
    cluster = await (await client.get("/cluster-health")).json()
    assert cluster == {"cluster_name": "localcluster", "metadata_cluster_health": {"members": [1]}}


async def test_openapi_subscriptions_kafka(client: AdminClient) -> None:
    for path in ("/openapi", "/v4/openapi"):
        document = await (await client.get(path)).json()
        assert document["openapi"] == "3.1.0" and "/deployments" in document["paths"]
    assert await (await client.get("/subscriptions")).json() == {"subscriptions": []}
    assert await (await client.get("/v4/kafka-clusters")).json() == {"clusters": []}
    response = await client.post(
        "/subscriptions", json={"source": "kafka://nope/topic", "sink": "service://Greeter/greet"}
    )
    assert (response.status, await response.json()) == (
        400,
        {"message": "Kafka cluster 'nope' not found. Available clusters: []", "restate_code": None},
    )
    response = await client.get("/subscriptions/sub_11XHoawrCiHDBBmqmlqaw3Q")
    assert (response.status, await response.json()) == (
        404,
        {
            "message": "The requested subscription 'sub_11XHoawrCiHDBBmqmlqaw3Q' does not exist",
            "restate_code": None,
        },
    )


async def test_invocation_routes() -> None:
    async with admin_client(make_state()) as without:
        response = await without.patch(f"/invocations/{INV}/cancel")
        assert response.status == 501
    invocations = FakeInvocations()
    state = make_state(invocations=invocations)
    async with admin_client(state) as client:
        response = await client.patch("/invocations/inv_bad/cancel")
        assert (response.status, await response.json()) == (
            400,
            {
                "message": "The request field 'invocation_id' is invalid. Reason: "
                "unrecognized codec version",
                "restate_code": None,
            },
        )
        invocations.outcomes["cancel"] = InvocationOutcome.ACCEPTED
        assert (await client.patch(f"/v4/invocations/{INV}/cancel")).status == 202
        assert (await client.patch(f"/v4/invocations/{INV}/kill")).status == 200
        invocations.outcomes["kill"] = InvocationOutcome.ALREADY_COMPLETED
        response = await client.patch(f"/v4/invocations/{INV}/kill")
        assert (response.status, await response.json()) == (
            409,
            {"message": f"The invocation '{INV}' was already completed.", "restate_code": None},
        )
        invocations.outcomes["purge"] = InvocationOutcome.NOT_COMPLETED
        response = await client.patch(f"/invocations/{INV}/purge")
        assert (await response.json())["message"] == f"The invocation '{INV}' is not yet completed."
        invocations.outcomes["purge"] = InvocationOutcome.NOT_FOUND
        response = await client.patch(f"/invocations/{INV}/purge")
        assert (response.status, (await response.json())["message"]) == (
            404,
            f"The requested invocation '{INV}' does not exist",
        )
        invocations.outcomes["resume"] = InvocationOutcome.COMPLETED
        response = await client.patch(f"/invocations/{INV}/resume")
        assert (await response.json())["message"] == (
            f"The invocation '{INV}' is completed, cannot be resumed."
        )
        assert (await client.delete(f"/invocations/{INV}?mode=Kill")).status == 202
        assert ("kill", INV) in invocations.calls
        assert (await client.patch(f"/invocations/{INV}/restart-as-new")).status == 501


async def test_modify_state_route(client: AdminClient, endpoint: FakeEndpoint) -> None:
    invocations = FakeInvocations()
    state = make_state(invocations=invocations)
    endpoint.cases["app"] = (200, CT4, manifest(GREETER, COUNTER))
    async with admin_client(state) as admin:
        await register(admin, endpoint.uri("app"))
        response = await admin.post(
            "/services/Counter/state", json={"object_key": "k1", "new_state": {"count": [49, 48]}}
        )
        assert (response.status, await response.read()) == (202, b"")
        assert invocations.calls == [("state", "Counter/k1=[('count', b'10')]")]
        response = await admin.post(
            "/services/Greeter/state", json={"object_key": "k1", "new_state": {}}
        )
        assert (response.status, await response.json()) == (
            400,
            {"message": "Cannot modify state for service type Service", "restate_code": None},
        )


# ---------------------------------------------------------------- a real SDK endpoint


def _python_sdk_app():  # type: ignore[no-untyped-def]
    # handler annotations are strings here (``from __future__``); the SDK evaluates them
    # against this module's globals, hence the module-level ``import restate``
    greeter = restate.Service("Greeter")

    @greeter.handler()
    async def greet(ctx: restate.Context, name: str) -> str:
        return f"Hello {name}"

    counter = restate.VirtualObject("Counter")

    @counter.handler()
    async def add(ctx: restate.ObjectContext, n: int) -> int:
        return n

    @counter.handler(kind="shared")
    async def get(ctx: restate.ObjectSharedContext) -> int:
        return 0

    signup = restate.Workflow("Signup")

    @signup.main()
    async def run(ctx: restate.WorkflowContext, email: str) -> str:
        return email

    @signup.handler()
    async def confirm(ctx: restate.WorkflowSharedContext, code: str) -> None:
        return None

    return restate.app([greeter, counter, signup])


@pytest.fixture
async def python_sdk_endpoint() -> AsyncIterator[str]:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    config = Config()
    # hypercorn takes over (and closes) the listening socket
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    config.errorlog = None
    stop = asyncio.Event()
    task = asyncio.create_task(serve(_python_sdk_app(), config, shutdown_trigger=stop.wait))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_discover_real_python_sdk_over_http11(
    client: AdminClient, python_sdk_endpoint: str
) -> None:
    status, _, body = await register(client, python_sdk_endpoint)
    assert status == 201, body
    assert body["sdk_version"].startswith("restate-sdk-python/")
    assert (body["min_protocol_version"], body["max_protocol_version"]) == (5, 7)
    services = {s["name"]: s for s in body["services"]}
    assert {name: s["ty"] for name, s in services.items()} == {
        "Greeter": "Service",
        "Counter": "VirtualObject",
        "Signup": "Workflow",
    }
    handlers = {h["name"]: h.get("ty") for h in services["Signup"]["handlers"]}
    assert handlers == {"run": "Workflow", "confirm": "Shared"}
    assert [h.get("ty") for h in services["Greeter"]["handlers"]] == [None]
    [entry] = (await (await client.get("/deployments")).json())["deployments"]
    # discovered over HTTP/1.1 the Python SDK reports request/response mode
    assert (entry["protocol_type"], entry["http_version"]) == ("RequestResponse", "HTTP/1.1")
    assert services["Greeter"]["inactivity_timeout"] == "0s"


async def test_discover_real_python_sdk_over_h2c(
    client: AdminClient, python_sdk_endpoint: str
) -> None:
    response = await client.post("/deployments", json={"uri": python_sdk_endpoint})
    body = await response.json()
    assert response.status == 201, body
    [entry] = (await (await client.get("/deployments")).json())["deployments"]
    # h2c with prior knowledge: the SDK serves bidirectional streams
    assert (entry["protocol_type"], entry["http_version"]) == ("BidiStream", "HTTP/2.0")
    assert {s["name"]: s["inactivity_timeout"] for s in body["services"]} == {
        "Greeter": "1m",
        "Counter": "1m",
        "Signup": "1m",
    }


async def test_h2c_against_http11_only_endpoint(
    client: AdminClient, endpoint: FakeEndpoint
) -> None:
    endpoint.cases["app"] = (200, CT4, manifest(GREETER))
    response = await client.post("/deployments", json={"uri": endpoint.uri("app")})
    assert (response.status, await response.json()) == (
        500,
        {
            "message": f"[META0014] [META0014] error when calling '{endpoint.uri('app')}': "
            "server possibly supports only HTTP1.1, consider discovery with --use-http1.1.",
            "restate_code": "META0014",
        },
    )


async def test_h2c_connection_refused(client: AdminClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    response = await client.post("/deployments", json={"uri": f"http://127.0.0.1:{port}"})
    assert (response.status, await response.json()) == (
        500,
        {
            "message": f"[META0003] [META0003] error when calling 'http://127.0.0.1:{port}/': "
            "h2 pool connection error: Connection refused (os error 111)",
            "restate_code": "META0003",
        },
    )
