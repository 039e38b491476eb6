"""What fuzzing the admin API against the real restate-server 1.7.12 found (each answer
here was recorded from it; tests/reliability/test_admin_fuzz.py sends the same probes to
both): query parameters are extracted before path parameters and refused when repeated,
registration bodies are matched against both variants of the untagged request, Kafka
cluster names are parsed as URI authorities, and a bad state scope is refused (the real
server answers 500 there, we answer 400)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from restate_server.admin.extract import authority_problem
from tests.unit.test_admin_api import (
    COUNTER,
    CT4,
    GREETER,
    INV,
    AdminClient,
    FakeEndpoint,
    FakeInvocations,
    admin_client,
    make_state,
    manifest,
    register,
)

TEXT = "text/plain; charset=utf-8"


@pytest.fixture
async def fake() -> AsyncIterator[FakeEndpoint]:
    endpoint = FakeEndpoint()
    await endpoint.server.start_server()
    yield endpoint
    await endpoint.server.close()


@pytest.fixture
async def admin() -> AsyncIterator[AdminClient]:
    async with admin_client(make_state()) as client:
        yield client


async def answer(client: AdminClient, method: str, path: str, body: Any = None) -> tuple:
    """(status, content type, text) of one request; ``body`` is sent as JSON."""
    kwargs: dict[str, Any] = {}
    if body is not None:
        kwargs["data"] = json.dumps(body)
        kwargs["headers"] = {"content-type": "application/json"}
    response = await client.request(method, path, **kwargs)
    return response.status, response.headers.get("content-type"), await response.text()


def query_error(detail: str) -> tuple:
    return 400, TEXT, f"Failed to deserialize query string: {detail}"


async def test_query_parameters_come_first_and_once() -> None:
    async with admin_client(make_state(invocations=FakeInvocations())) as client:
        modes = "expected one of `Cancel`, `cancel`, `Kill`, `kill`, `Purge`, `purge`"
        # the query is refused before the (bad) invocation id is looked at
        assert await answer(client, "DELETE", "/invocations/bad?mode=Foo") == query_error(
            f"mode: unknown variant `Foo`, {modes}"
        )
        assert await answer(client, "DELETE", f"/invocations/{INV}?mode=KILL") == query_error(
            f"mode: unknown variant `KILL`, {modes}"
        )
        assert (await answer(client, "DELETE", f"/invocations/{INV}?mode=kill"))[0] == 202
        for path in (
            f"/invocations/{INV}?mode=Kill&mode=Purge",
            "/deployments/dp_10UDT2TKPXUQpxbRXeXPJfk?force=true&force=true",
            "/subscriptions?sink=a&sink=b",
        ):
            name = path.rsplit("&", 1)[1].split("=")[0]
            method = "GET" if path.startswith("/subscriptions") else "DELETE"
            assert await answer(client, method, path) == query_error(f"duplicate field `{name}`")
        resume = "/invocations/bad/resume?deployment=a&deployment=b"
        assert await answer(client, "PATCH", resume) == query_error("duplicate field `deployment`")
        # the deployment is checked after the id, like restart-as-new's
        for value, reason in (("a", "bad format"), ("", "bad length"), ("LATEST", "bad format")):
            status, _, text = await answer(
                client, "PATCH", f"/invocations/{INV}/resume?deployment={value}"
            )
            assert (status, json.loads(text)["message"]) == (
                400,
                f"The query parameter 'deployment' is invalid. Reason: {reason}",
            )
        for value in ("latest", "Keep", "dp_10UDT2TKPXUQpxbRXeXPJfk"):
            path = f"/invocations/{INV}/resume?deployment={value}"
            assert (await answer(client, "PATCH", path))[0] == 200


UNTAGGED = (
    422,
    TEXT,
    "Failed to deserialize the JSON body into the target type: "
    "data did not match any variant of untagged enum RegisterDeploymentRequest",
)


def field_error(field: str, reason: str) -> tuple:
    message = f"The request field '{field}' is invalid. Reason: {reason}"
    return 400, "application/json", json.dumps({"message": message, "restate_code": None})


async def test_registration_bodies_match_either_variant(
    admin: AdminClient, fake: FakeEndpoint
) -> None:
    client, endpoint = admin, fake
    lambda_refused = field_error("arn", "Lambda deployments are not supported by this server")
    uri = endpoint.uri("app")
    cases: list[tuple[dict[str, Any], tuple]] = [
        ({"arn": "x", "dry_run": "no"}, UNTAGGED),
        ({"arn": "x", "assume_role_arn": 5}, UNTAGGED),
        ({"arn": "x", "metadata": {"a": None}}, UNTAGGED),
        ({"arn": "x", "additional_headers": {"a b": "c"}}, UNTAGGED),
        ({"arn": "x", "force": 1}, UNTAGGED),
        # not a field of the Lambda variant: ignored there
        ({"arn": "x", "use_http_11": 1}, lambda_refused),
        # the HTTP variant fails (uri is no string), the Lambda one matches
        ({"arn": "x", "uri": 1}, lambda_refused),
        ({"uri": uri, "auth": {}}, UNTAGGED),
        ({"uri": uri, "auth": {"GoogleIdToken": None}}, UNTAGGED),
        ({"uri": uri, "auth": "[Filtered]"}, UNTAGGED),
        ({"uri": uri, "auth": {"GoogleIdToken": {"audience": 5}}}, UNTAGGED),
        (
            {"uri": uri, "auth": {"GoogleIdToken": {"audience": "x"}}},
            field_error("auth", "GoogleIdToken authentication is not supported by this server"),
        ),
    ]
    for body, expected in cases:
        got = await answer(client, "POST", "/deployments", body)
        assert got[:2] == expected[:2], (body, got)
        if expected[1] == "application/json":
            assert json.loads(got[2]) == json.loads(expected[2]), body
        else:
            assert got[2] == expected[2], body
    # none of them reached the endpoint
    assert endpoint.requests == []
    endpoint.cases["app"] = (200, CT4, manifest(GREETER))
    status, _, _ = await register(client, uri, auth=None)
    assert status == 201


async def test_a_bad_state_scope_is_a_400(fake: FakeEndpoint) -> None:
    endpoint = fake
    invocations = FakeInvocations()
    endpoint.cases["app"] = (200, CT4, manifest(GREETER, COUNTER))
    async with admin_client(make_state(invocations=invocations)) as client:
        await register(client, endpoint.uri("app"))
        for scope, problem in (
            ("bad scope!", "value contains characters outside the allowed set [a-zA-Z0-9_.-]"),
            ("", "value cannot be empty"),
            ("a" * 37, "value too long: 37 bytes (max 36)"),
        ):
            body = {"object_key": "k", "new_state": {}, "scope": scope}
            status, _, text = await answer(client, "POST", "/services/Counter/state", body)
            assert (status, json.loads(text)["message"]) == (400, f"bad scope: {problem}")
        body = {"object_key": "k", "new_state": {}, "scope": "ok_scope.1-2"}
        assert (await answer(client, "POST", "/services/Counter/state", body))[0] == 202
        # the service checks come first
        body = {"object_key": "k", "new_state": {"a": [1]}, "scope": "bad!"}
        assert (await answer(client, "POST", "/services/Nope/state", body))[0] == 404
        body = {"object_key": "k", "new_state": {}, "scope": "bad!"}
        assert (await answer(client, "POST", "/services/Greeter/state", body))[0] == 400
        assert invocations.calls == []


async def test_a_service_patch_may_be_an_array(fake: FakeEndpoint) -> None:
    endpoint = fake
    endpoint.cases["app"] = (200, CT4, manifest(GREETER, COUNTER))
    async with admin_client(make_state()) as client:
        await register(client, endpoint.uri("app"))
        status, _, text = await answer(client, "PATCH", "/services/Counter", [False, "2h"])
        assert status == 200
        assert json.loads(text)["public"] is False
        assert json.loads(text)["idempotency_retention"] == "2h"
        assert (await answer(client, "PATCH", "/services/Nope", []))[0] == 404
        status, content_type, _ = await answer(client, "PATCH", "/services/Counter", [1])
        assert (status, content_type) == (422, TEXT)
        status, content_type, _ = await answer(client, "PATCH", "/services/Counter", [None] * 7)
        assert (status, content_type) == (400, TEXT)


async def test_kafka_and_subscription_requests_are_checked_like_the_real_ones(
    admin: AdminClient,
) -> None:
    client = admin

    def shape(detail: str) -> tuple:
        return 422, TEXT, f"Failed to deserialize the JSON body into the target type: {detail}"

    def error(status: int, message: str, code: str | None = None) -> tuple:
        body = json.dumps({"message": message, "restate_code": code})
        return status, "application/json", body

    bootstrap = "properties must contain either 'bootstrap.servers' or 'metadata.broker.list'"
    servers = {"properties": {"bootstrap.servers": "127.0.0.1:9"}}
    cases: list[tuple[str, str, Any, tuple]] = [
        ("POST", "/kafka-clusters", {"name": "ab"}, shape("missing field `properties`")),
        (
            "POST",
            "/kafka-clusters",
            {"name": "a b", **servers},
            shape("name: invalid uri character"),
        ),
        ("POST", "/kafka-clusters", {"name": "", **servers}, shape("name: empty string")),
        (
            "POST",
            "/kafka-clusters",
            {"name": "ab", "properties": {"x": 1}},
            shape("properties.x: invalid type: integer `1`, expected a string"),
        ),
        (
            "POST",
            "/kafka-clusters",
            {"name": "ab", "properties": {}},
            error(400, f"kafka cluster 'ab' {bootstrap}"),
        ),
        (
            "POST",
            "/kafka-clusters",
            {"name": "ab", **servers},
            error(400, "Kafka clusters are not supported by this server"),
        ),
        ("PATCH", "/kafka-clusters/ab", {}, shape("missing field `properties`")),
        (
            "PATCH",
            "/kafka-clusters/a%7Cb",
            servers,
            field_error("cluster_name", "invalid uri character"),
        ),
        (
            "PATCH",
            "/kafka-clusters/ab",
            {"properties": {}},
            error(400, f"kafka cluster 'ab' {bootstrap}"),
        ),
        (
            "PATCH",
            "/kafka-clusters/ab",
            servers,
            error(404, "not found in the schema registry: kafka cluster 'ab'"),
        ),
        ("DELETE", "/kafka-clusters/a:b:c", None, field_error("cluster_name", "invalid authority")),
        (
            "DELETE",
            "/kafka-clusters/ab?force=maybe",
            None,
            query_error("force: provided string was not `true` or `false`"),
        ),
        (
            "GET",
            "/kafka-clusters/ab?include_subscriptions=2",
            None,
            query_error("include_subscriptions: provided string was not `true` or `false`"),
        ),
        (
            "POST",
            "/subscriptions",
            {"source": "a b", "sink": "service://G/g"},
            shape("source: invalid uri character"),
        ),
        (
            "POST",
            "/subscriptions",
            {"source": "", "sink": "service://G/g"},
            shape("source: empty string"),
        ),
        (
            "POST",
            "/subscriptions",
            {"source": "kafka://c/t", "sink": "service://G/g", "options": {"a": 1}},
            shape("options.a: invalid type: integer `1`, expected a string"),
        ),
        (
            "POST",
            "/subscriptions",
            {"source": "kafka://c/t", "sink": "https://x"},
            error(
                400,
                "[META0009] invalid sink URI 'https://x/': must have a scheme segment, "
                "with supported schemes: [service].",
                "META0009",
            ),
        ),
        (
            "GET",
            "/subscriptions/bad",
            None,
            (400, TEXT, "Invalid URL: Cannot parse `subscription` with value `bad`: bad format"),
        ),
        (
            "DELETE",
            "/subscriptions/bad",
            None,
            (400, TEXT, "Invalid URL: Cannot parse `subscription` with value `bad`: bad format"),
        ),
    ]
    for method, path, body, expected in cases:
        got = await answer(client, method, path, body)
        if expected[1] == "application/json":
            assert (got[0], got[1], json.loads(got[2])) == (
                expected[0],
                expected[1],
                json.loads(expected[2]),
            ), (method, path, body)
        else:
            assert got == expected, (method, path, body)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("ab", None),
        ("a_b", None),
        ("a:b", None),
        ("a@b", None),
        ("[::1]", None),
        ("", "empty string"),
        ("a|b", "invalid uri character"),
        ("a b", "invalid uri character"),
        ("é", "invalid uri character"),
        ("a/b", "invalid uri character"),
        ("a?b", "invalid uri character"),
        ("a#b", "invalid uri character"),
        ("a:b:c", "invalid authority"),
        ("a%b", "invalid authority"),
        ("[a", "invalid authority"),
        ("a@", "invalid authority"),
    ],
)
def test_kafka_cluster_names_parse_as_uri_authorities(name: str, problem: str | None) -> None:
    # each verified on restate-server 1.7.12 (DELETE /kafka-clusters/{name})
    assert authority_problem(name) == problem


async def test_service_durations_at_the_edges(fake: FakeEndpoint) -> None:
    """``"0"`` is the one bare number the real server takes; past 175,307,616 hours it
    drops the connection (a panic), we answer 422."""
    fake.cases["app"] = (200, CT4, manifest(GREETER, COUNTER))
    async with admin_client(make_state()) as client:
        await register(client, fake.uri("app"))
        for value, shown in (("0", "0s"), ("175307616h", "7304484d"), ("PT1H", "1h")):
            status, _, text = await answer(
                client, "PATCH", "/services/Counter", {"abort_timeout": value}
            )
            assert (status, json.loads(text)["abort_timeout"]) == (200, shown), value
        for value in ("00", "1", " 0", "175307617h", "PT175307617H", "10519200000m"):
            status, content_type, text = await answer(
                client, "PATCH", "/services/Counter", {"abort_timeout": value}
            )
            assert (status, content_type) == (422, TEXT), (value, text)
        # nothing of the refused ones was applied
        status, _, text = await answer(client, "GET", "/services/Counter")
        assert json.loads(text)["abort_timeout"] == "1h"
