"""Schema registry: manifest rules, registration semantics, resolution, discovery checks.

No sockets: discovery runs against an injected ``http_get``. Expected messages and
codes were recorded from restate-server 1.7.12 (see the admin transcripts).
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest

from restate_server.invoker.retry import RetryPolicy
from restate_server.schema import manifest
from restate_server.schema.discovery import (
    DiscoveryResult,
    TransportError,
    discover,
    discover_url,
    normalize_uri,
)
from restate_server.schema.errors import DiscoveryError, NotFoundError, SchemaError
from restate_server.schema.ids import IdError, check_deployment_id, new_deployment_id
from restate_server.schema.registry import InMemoryMetadataStore, SchemaRegistry, ServicePatch
from restate_server.schema.resolve import SchemaDefaults, describe_input, describe_output
from restate_server.schema.validation import build_handler

CT4 = "application/vnd.restate.endpointmanifest.v4+json"
ACCEPT = (
    "application/vnd.restate.endpointmanifest.v1+json, "
    "application/vnd.restate.endpointmanifest.v2+json, "
    "application/vnd.restate.endpointmanifest.v3+json, "
    "application/vnd.restate.endpointmanifest.v4+json"
)

GREETER = {"name": "Greeter", "ty": "SERVICE", "handlers": [{"name": "greet"}]}
COUNTER = {
    "name": "Counter",
    "ty": "VIRTUAL_OBJECT",
    "handlers": [{"name": "add", "ty": "EXCLUSIVE"}, {"name": "get", "ty": "SHARED"}],
}
SIGNUP = {
    "name": "Signup",
    "ty": "WORKFLOW",
    "handlers": [{"name": "run", "ty": "WORKFLOW"}, {"name": "confirm"}],
}


def endpoint_json(services: list[dict[str, Any]], **top: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "protocolMode": "BIDI_STREAM",
        "minProtocolVersion": 5,
        "maxProtocolVersion": 7,
        "services": services,
    }
    body.update(top)
    return body


def discovery(*services: dict[str, Any], **kw: Any) -> DiscoveryResult:
    endpoint = msgspec.convert(endpoint_json(list(services)), manifest.Endpoint)
    fields = {
        "protocol_type": "BidiStream",
        "http_version": "HTTP/2.0",
        "min_protocol_version": 5,
        "max_protocol_version": 7,
        "sdk_version": "restate-sdk-python/1.2.0",
        "manifest_version": 4,
        "services": endpoint.services,
    }
    fields.update(kw)
    return DiscoveryResult(**fields)


def handler(service_ty: str, **fields: Any):  # type: ignore[no-untyped-def]
    h = msgspec.convert({"name": "h", **fields}, manifest.Handler)
    return build_handler("Svc", service_ty, True, h)  # type: ignore[arg-type]


@pytest.fixture
def registry() -> SchemaRegistry:
    return SchemaRegistry(InMemoryMetadataStore())


URI = "http://127.0.0.1:9080/"

# ---------------------------------------------------------------- ids and uris


def test_deployment_ids_have_the_real_shape() -> None:
    dp = new_deployment_id()
    assert dp.startswith("dp_1") and len(dp) == 26
    check_deployment_id(dp)
    check_deployment_id("dp_10UDT2TKPXUQpxbRXeXPJfj")
    for bad, reason in [
        ("not-an-id", "bad format"),
        ("inv_bad", "unrecognized codec version"),
        ("dp_2abc", "unrecognized codec version"),
        ("xx_1abc", "unrecognized resource type: xx"),
        ("dp_1abc", "bad length"),
        ("", "bad length"),
    ]:
        with pytest.raises(IdError, match=f"^{reason}$"):
            check_deployment_id(bad)


def test_uri_normalisation_and_discover_url() -> None:
    assert normalize_uri("http://127.0.0.1:9080") == "http://127.0.0.1:9080/"
    assert normalize_uri("http://127.0.0.1:9080/good") == "http://127.0.0.1:9080/good"
    assert discover_url("http://h:1/") == "http://h:1/discover"
    assert discover_url("http://h:1/base/") == "http://h:1/base/discover"
    assert discover_url("http://h:1/base?x=1") == "http://h:1/base/discover?x=1"


# ---------------------------------------------------------------- manifest rules


@pytest.mark.parametrize(
    ("service_ty", "handler_ty", "expected"),
    [
        ("Service", None, None),
        ("Service", "SHARED", None),
        ("VirtualObject", None, "Exclusive"),
        ("VirtualObject", "EXCLUSIVE", "Exclusive"),
        ("VirtualObject", "SHARED", "Shared"),
        ("Workflow", "WORKFLOW", "Workflow"),
        ("Workflow", None, "Shared"),
        ("Workflow", "SHARED", "Shared"),
    ],
)
def test_handler_type_resolution(service_ty: str, handler_ty: str | None, expected: str) -> None:
    fields = {} if handler_ty is None else {"ty": handler_ty}
    assert handler(service_ty, **fields).ty == expected


@pytest.mark.parametrize(
    ("service_ty", "handler_ty", "shown"),
    [
        ("Service", "EXCLUSIVE", "(Service, Some(Exclusive))"),
        ("Service", "WORKFLOW", "(Service, Some(Workflow))"),
        ("VirtualObject", "WORKFLOW", "(VirtualObject, Some(Workflow))"),
        ("Workflow", "EXCLUSIVE", "(Workflow, Some(Exclusive))"),
    ],
)
def test_bad_handler_type_combinations(service_ty: str, handler_ty: str, shown: str) -> None:
    with pytest.raises(SchemaError) as info:
        handler(service_ty, ty=handler_ty)
    assert info.value.message == f"invalid combination of service type and handler type '{shown}'"
    assert info.value.code is None and info.value.status == 400


def test_retention_fields_only_where_allowed() -> None:
    with pytest.raises(
        SchemaError, match=r"^h sets the idempotency_retention, but it's a WORKFLOW"
    ):
        handler("Workflow", ty="WORKFLOW", idempotencyRetention=1000)
    with pytest.raises(
        SchemaError, match=r"^h sets the workflow_completion_retention, but it's not"
    ):
        handler("VirtualObject", workflowCompletionRetention=1000)
    assert handler("Workflow", ty="WORKFLOW", workflowCompletionRetention=5).ty == "Workflow"


def test_private_service_with_public_handler_is_refused(registry: SchemaRegistry) -> None:
    svc = {
        "name": "Priv",
        "ty": "SERVICE",
        "ingressPrivate": True,
        "handlers": [{"name": "h", "ingressPrivate": False}],
    }
    with pytest.raises(SchemaError, match=r"^The service Priv is private, but the h is explicitly"):
        registry.apply_registration(URI, discovery(svc))


@pytest.mark.parametrize("name", ["restate", "RestateFoo", "restate_x", "openapi", "OpenAPI"])
def test_reserved_service_names(registry: SchemaRegistry, name: str) -> None:
    svc = {"name": name, "ty": "SERVICE", "handlers": [{"name": "h"}]}
    with pytest.raises(SchemaError) as info:
        registry.apply_registration(URI, discovery(svc))
    assert info.value.code == "META0005" and info.value.status == 400
    assert (
        info.value.message
        == f"cannot insert/modify service '{name}' as it contains a reserved name"
    )


def test_input_content_type_validation() -> None:
    with pytest.raises(SchemaError) as info:
        handler("Service", input={"contentType": "nope"})
    assert info.value.message == (
        "the handler 'h' input content-type is not valid: can't parse the content-type 'nope': "
        "must contain one /"
    )
    with pytest.raises(SchemaError, match="wildcard format"):
        handler("Service", input={"contentType": "*/json"})


@pytest.mark.parametrize(
    ("fields", "input_description", "output_description"),
    [
        ({}, "*/*", "application/json"),
        ({"input": {}, "output": {}}, "none", "none"),
        ({"input": {"required": True}}, "<invalid rules>", "application/json"),
        ({"input": {"contentType": "text/*"}}, "text/*", "application/json"),
        ({"input": {"required": True, "contentType": "*/*"}}, "*/*", "application/json"),
        (
            {"output": {"contentType": "text/plain", "setContentTypeIfEmpty": True}},
            "*/*",
            "optional text/plain",
        ),
        (
            {
                "input": {"contentType": "application/json", "jsonSchema": {"type": "string"}},
                "output": {"contentType": "application/json", "jsonSchema": {"title": "Out"}},
            },
            "JSON string",
            "JSON 'Out'",
        ),
    ],
)
def test_input_output_descriptions(
    fields: dict[str, Any], input_description: str, output_description: str
) -> None:
    # the table was recorded from the real server with a hand-written manifest
    h = handler("Service", **fields)
    assert describe_input(h) == input_description
    assert describe_output(h) == output_description


def test_input_rules_of_the_ingress(registry: SchemaRegistry) -> None:
    svc = {
        "name": "In",
        "ty": "SERVICE",
        "handlers": [
            {"name": "json", "input": {"contentType": "application/json"}},
            {"name": "req", "input": {"required": True, "contentType": "application/json"}},
            {"name": "empty", "input": {}},
            {"name": "any"},
            {
                "name": "schema",
                "input": {
                    "required": True,
                    "contentType": "application/json",
                    "jsonSchema": {"type": "object"},
                },
            },
        ],
    }
    registry.apply_registration(URI, discovery(svc))

    def check(h: str, ct: str | None, body: bytes) -> str | None:
        info = registry.resolve_invocation_target("In", h)
        assert info is not None
        return info.validate_input(ct, body)

    assert check("json", None, b"") is None
    assert check("json", "application/json; charset=utf-8", b"{}") is None
    assert (
        check("json", "text/plain", b"x")
        == "Content-type 'text/plain' does not match 'application/json'"
    )
    assert check("json", None, b"x") == "Empty content-type"
    assert check("req", None, b"") == "Empty content-type"
    assert check("empty", "application/json", b"1") == (
        "Expected body and content-type to be empty, but wasn't with content-type "
        "'Some(\"application/json\")'"
    )
    assert check("any", "whatever/thing", b"x") is None
    assert check("schema", "application/json", b"") == "Empty body not allowed"


# ---------------------------------------------------------------- registration


def test_register_new_deployment(registry: SchemaRegistry) -> None:
    result = registry.apply_registration(URI, discovery(GREETER, COUNTER, SIGNUP), now_ms=1000)
    assert result.outcome == "Created"
    dp = result.deployment
    assert dp.id.startswith("dp_1") and dp.services == {"Greeter": 1, "Counter": 1, "Signup": 1}
    assert dp.created_at_ms == 1000 and dp.sdk_version == "restate-sdk-python/1.2.0"
    assert registry.get_deployment(dp.id) == dp
    assert [s.name for s in registry.list_services()] == ["Counter", "Greeter", "Signup"]
    counter = registry.get_service("Counter")
    assert counter is not None and counter.ty == "VirtualObject" and counter.revision == 1
    assert registry.get_handler("Counter", "get").ty == "Shared"  # type: ignore[union-attr]
    assert registry.get_handler("Greeter", "greet").ty is None  # type: ignore[union-attr]
    assert registry.latest_deployment_for("Signup") == dp
    assert registry.version == 1


def test_same_uri_without_force_changes_nothing(registry: SchemaRegistry) -> None:
    first = registry.apply_registration(URI, discovery(GREETER))
    again = registry.apply_registration("https://127.0.0.1:9080/", discovery(GREETER, COUNTER))
    assert again.outcome == "Unchanged" and again.deployment.id == first.deployment.id
    assert registry.get_service("Counter") is None
    assert registry.version == 1


def test_force_overwrites_in_place_and_bumps_every_revision(registry: SchemaRegistry) -> None:
    first = registry.apply_registration(URI, discovery(GREETER, COUNTER))
    again = registry.apply_registration(URI, discovery(GREETER), force=True)
    assert again.outcome == "Overwritten" and again.deployment.id == first.deployment.id
    assert registry.get_service("Greeter").revision == 2  # type: ignore[union-attr]
    # a service the new manifest no longer has disappears with the overwrite
    assert registry.get_service("Counter") is None
    assert len(registry.list_deployments()) == 1


def test_dry_run_changes_nothing(registry: SchemaRegistry) -> None:
    store = registry._store  # type: ignore[attr-defined]
    result = registry.apply_registration(URI, discovery(GREETER), dry_run=True)
    assert result.outcome == "Created" and result.services[0].revision == 1
    assert registry.list_deployments() == [] and registry.version == 0 and store.saves == 0
    registry.apply_registration(URI, discovery(GREETER))
    preview = registry.apply_registration(URI, discovery(GREETER), force=True, dry_run=True)
    assert preview.services[0].revision == 2
    assert registry.get_service("Greeter").revision == 1  # type: ignore[union-attr]


def test_new_deployment_gets_next_revision_and_old_stays_describable(
    registry: SchemaRegistry,
) -> None:
    old = registry.apply_registration(URI, discovery(GREETER)).deployment
    new = registry.apply_registration("http://127.0.0.1:9081/", discovery(GREETER)).deployment
    assert registry.get_service("Greeter").revision == 2  # type: ignore[union-attr]
    assert registry.get_service("Greeter").deployment_id == new.id  # type: ignore[union-attr]
    assert registry.deployment_services(old.id)[0].revision == 1
    assert registry.get_service_revision(old.id, "Greeter").revision == 1  # type: ignore[union-attr]
    # removing the newest falls back to the revision the old deployment serves
    assert registry.remove_deployment(new.id)
    assert registry.get_service("Greeter").revision == 1  # type: ignore[union-attr]
    assert not registry.remove_deployment(new.id)
    assert registry.remove_deployment(old.id)
    assert registry.get_service("Greeter") is None
    # with no history left, a new registration starts at revision 1 again
    registry.apply_registration(URI, discovery(GREETER))
    assert registry.get_service("Greeter").revision == 1  # type: ignore[union-attr]


def test_service_type_change_is_a_breaking_change(registry: SchemaRegistry) -> None:
    registry.apply_registration(URI, discovery(GREETER))
    as_object = {"name": "Greeter", "ty": "VIRTUAL_OBJECT", "handlers": [{"name": "greet"}]}
    other = "http://127.0.0.1:9082/"
    with pytest.raises(SchemaError) as info:
        registry.apply_registration(other, discovery(as_object))
    assert info.value.status == 409 and info.value.code == "META0006"
    assert info.value.message == (
        "detected a new service revision for 'Greeter' changing the service type from previous "
        "revision. Service type cannot be changed across revisions."
    )
    result = registry.apply_registration(other, discovery(as_object), breaking=True)
    assert result.outcome == "Created"
    assert registry.get_service("Greeter").ty == "VirtualObject"  # type: ignore[union-attr]
    assert registry.get_service("Greeter").revision == 2  # type: ignore[union-attr]
    # force implies breaking
    registry.apply_registration(URI, discovery(GREETER), force=True)
    assert registry.get_service("Greeter").ty == "Service"  # type: ignore[union-attr]


def test_modify_service_and_reset_on_new_revision(registry: SchemaRegistry) -> None:
    registry.apply_registration(URI, discovery(GREETER, SIGNUP))
    patched = registry.modify_service(
        "Greeter", ServicePatch(public=False, idempotency_retention_ms=7_200_000)
    )
    assert patched.public is False and patched.idempotency_retention_ms == 7_200_000
    assert patched.revision == 1
    info = registry.resolve_invocation_target("Greeter", "greet")
    assert info is not None and info.public is False and info.idempotency_retention_ms == 7_200_000
    with pytest.raises(SchemaError) as err:
        registry.modify_service("Greeter", ServicePatch(workflow_completion_retention_ms=1))
    assert err.value.message == "modifying retention time for service type Service is unsupported"
    registry.modify_service("Signup", ServicePatch(workflow_completion_retention_ms=172_800_000))
    assert (
        registry.resolve_invocation_target("Signup", "run").completion_retention_ms == 172_800_000
    )  # type: ignore[union-attr]
    with pytest.raises(NotFoundError) as missing:
        registry.modify_service("Nope", ServicePatch(public=True))
    assert str(missing.value) == "not found in the schema registry: service with name 'Nope'"
    # a new revision starts again from what the SDK declares
    registry.apply_registration(URI, discovery(GREETER, SIGNUP), force=True)
    fresh = registry.get_service("Greeter")
    assert fresh is not None and fresh.public is True and fresh.idempotency_retention_ms is None


def test_persistence_round_trip_and_listeners() -> None:
    store = InMemoryMetadataStore()
    registry = SchemaRegistry(store)
    seen: list[int] = []
    unsubscribe = registry.subscribe(lambda r: seen.append(r.version))
    dp = registry.apply_registration(URI, discovery(GREETER, COUNTER)).deployment
    registry.modify_service("Counter", ServicePatch(abort_timeout_ms=120_000))
    assert seen == [1, 2]
    unsubscribe()
    registry.remove_deployment("dp_10UDT2TKPXUQpxbRXeXPJfj")
    reloaded = SchemaRegistry(store)
    assert reloaded.version == 2
    assert reloaded.get_deployment(dp.id) == dp
    assert reloaded.get_service("Counter") == registry.get_service("Counter")
    assert reloaded.get_service("Counter").abort_timeout_ms == 120_000  # type: ignore[union-attr]


def test_update_deployment_keeps_id_and_checks_versions(registry: SchemaRegistry) -> None:
    dp = registry.apply_registration(URI, discovery(GREETER)).deployment
    moved = registry.update_deployment(
        dp.id,
        discovery(GREETER, protocol_type="RequestResponse", http_version="HTTP/1.1"),
        uri="http://127.0.0.1:9090/",
        use_http_11=True,
        additional_headers={"x-a": "b"},
    )
    assert moved.deployment.id == dp.id and moved.deployment.uri == "http://127.0.0.1:9090/"
    assert registry.get_deployment(dp.id).additional_headers == {"x-a": "b"}  # type: ignore[union-attr]
    with pytest.raises(SchemaError) as info:
        registry.update_deployment(
            dp.id,
            discovery(GREETER, max_protocol_version=6),
            uri=URI,
            use_http_11=False,
            additional_headers={},
        )
    assert info.value.code == "META0016" and "from 5..=7 to 5..=6" in info.value.message


# ---------------------------------------------------------------- resolution


def test_resolution_handler_over_service_over_defaults() -> None:
    defaults = SchemaDefaults(retry_policy=RetryPolicy())
    registry = SchemaRegistry(InMemoryMetadataStore(), defaults)
    svc = {
        "name": "Obj",
        "ty": "VIRTUAL_OBJECT",
        "inactivityTimeout": 1000,
        "journalRetention": 5000,
        "enableLazyState": True,
        "retryPolicyMaxAttempts": 3,
        "retryPolicyOnMaxAttempts": "KILL",
        "handlers": [
            {"name": "plain"},
            {
                "name": "tuned",
                "inactivityTimeout": 2000,
                "abortTimeout": 3000,
                "enableLazyState": False,
                "retryPolicyInitialInterval": 10,
                "ingressPrivate": True,
                "idempotencyRetention": 60_000,
                "output": {"contentType": "text/plain"},
            },
        ],
    }
    registry.apply_registration(URI, discovery(svc))
    plain = registry.resolve_invocation_target("Obj", "plain")
    tuned = registry.resolve_invocation_target("Obj", "tuned")
    assert plain is not None and tuned is not None
    assert (plain.inactivity_timeout_ms, plain.abort_timeout_ms) == (1000, 600_000)
    assert (tuned.inactivity_timeout_ms, tuned.abort_timeout_ms) == (2000, 3000)
    assert plain.enable_lazy_state is True and tuned.enable_lazy_state is False
    assert plain.journal_retention_ms == 5000 and plain.idempotency_retention_ms == 86_400_000
    assert tuned.idempotency_retention_ms == 60_000 == tuned.completion_retention_ms
    assert plain.public is True and tuned.public is False
    assert isinstance(plain.retry_policy, RetryPolicy)
    assert plain.retry_policy == RetryPolicy(max_attempts=3, on_max_attempts="kill")
    assert tuned.retry_policy.initial_interval_ms == 10
    assert tuned.output_content_type == "text/plain"
    assert plain.service_ty == "VirtualObject" and plain.handler_ty == "Exclusive"
    assert registry.resolve_invocation_target("Obj", "nope") is None
    assert registry.resolve_invocation_target("Nope", "plain") is None


def test_resolution_of_workflow_retention_and_pinned_deployment(registry: SchemaRegistry) -> None:
    wf = {
        "name": "Wf",
        "ty": "WORKFLOW",
        "idempotencyRetention": 1000,
        "handlers": [
            {"name": "run", "ty": "WORKFLOW", "workflowCompletionRetention": 9000},
            {"name": "signal"},
        ],
    }
    old = registry.apply_registration(URI, discovery(wf)).deployment
    run = registry.resolve_invocation_target("Wf", "run")
    signal = registry.resolve_invocation_target("Wf", "signal")
    assert run is not None and signal is not None
    assert run.completion_retention_ms == 9000 and signal.completion_retention_ms == 1000
    faster = dict(wf, inactivityTimeout=42)
    registry.apply_registration("http://127.0.0.1:9081/", discovery(faster))
    assert registry.resolve_invocation_target("Wf", "run").inactivity_timeout_ms == 42  # type: ignore[union-attr]
    pinned = registry.resolve_invocation_target("Wf", "run", deployment_id=old.id)
    assert pinned is not None and pinned.inactivity_timeout_ms == 60_000 and pinned.revision == 1


# ---------------------------------------------------------------- discovery


class FakeGet:
    """An ``http_get`` answering from a list of canned responses (or raising)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, list[tuple[str, str]], bool]] = []

    async def __call__(
        self, url: str, headers: list[tuple[str, str]], use_http_11: bool
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        self.calls.append((url, headers, use_http_11))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer


def ok(body: Any, ct: str | None = CT4, server: str | None = "restate-sdk-python/1.2.0"):  # type: ignore[no-untyped-def]
    headers = []
    if ct is not None:
        headers.append(("content-type", ct))
    if server is not None:
        headers.append(("x-restate-server", server))
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return (200, headers, raw)


async def run_discover(get: FakeGet, **kw: Any) -> DiscoveryResult:
    return await discover(URI, http_get=get, retry_delays=(0, 0, 0, 0), **kw)


async def test_discover_sends_the_real_headers_and_parses() -> None:
    get = FakeGet(ok(endpoint_json([GREETER, COUNTER])))
    result = await run_discover(get, additional_headers={"x-token": "t"}, cluster_name="c1")
    url, headers, use_http_11 = get.calls[0]
    assert url == "http://127.0.0.1:9080/discover" and use_http_11 is False
    assert headers == [("accept", ACCEPT), ("x-restate-cluster-name", "c1"), ("x-token", "t")]
    assert result.protocol_type == "BidiStream" and result.http_version == "HTTP/2.0"
    assert (result.min_protocol_version, result.max_protocol_version) == (5, 7)
    assert result.sdk_version == "restate-sdk-python/1.2.0" and result.manifest_version == 4
    assert [s.name for s in result.services] == ["Greeter", "Counter"]
    rr = await run_discover(
        FakeGet(ok(endpoint_json([GREETER], protocolMode="REQUEST_RESPONSE"))), use_http_11=True
    )
    assert rr.protocol_type == "RequestResponse" and rr.http_version == "HTTP/1.1"


async def test_discover_ignores_unknown_manifest_fields() -> None:
    body = endpoint_json([dict(GREETER, futureField=1)], somethingNew=True)
    result = await run_discover(FakeGet(ok(body)))
    assert result.services[0].name == "Greeter"


@pytest.mark.parametrize(
    ("answer", "code", "message"),
    [
        (
            ok(b"this is not json"),
            None,
            "received a bad response from the SDK that cannot be decoded: ",
        ),
        (
            ok(endpoint_json([GREETER]), ct="application/json"),
            "META0013",
            'received a bad response from the SDK: Bad content type header: "application/json". '
            f"Expected one of '\"{ACCEPT}\"'",
        ),
        (
            ok(endpoint_json([GREETER]), ct=None),
            "META0013",
            "received a bad response from the SDK: No content type header was specified. "
            f"Expected one of '\"{ACCEPT}\"' content type.",
        ),
        (
            ok(endpoint_json([GREETER], minProtocolVersion=8, maxProtocolVersion=4)),
            "META0013",
            "received a bad response from the SDK: Expected min protocol version to be <= max "
            "protocol version. Received min protocol version '8', max protocol version '4'",
        ),
        (
            ok(endpoint_json([GREETER], minProtocolVersion=8, maxProtocolVersion=9)),
            "META0012",
            "unsupported service protocol versions: [8, 9]. Supported versions by this runtime "
            "are [5, 7]. Please upgrade the SDK and try registering again.",
        ),
        (
            ok(endpoint_json([GREETER], minProtocolVersion=1, maxProtocolVersion=4)),
            "META0012",
            "unsupported service protocol versions: [1, 4].",
        ),
        (
            ok({"minProtocolVersion": 5, "maxProtocolVersion": 7, "services": []}),
            "META0013",
            "received a bad response from the SDK: missing protocol mode",
        ),
        (
            ok(endpoint_json([{"name": "1Bad", "ty": "SERVICE", "handlers": []}])),
            None,
            "received a bad response from the SDK that cannot be decoded: ",
        ),
        (
            (404, [("content-type", "text/plain")], b"nope"),
            "META0003",
            "got status code '404'. Make sure the provided URI has the correct path where the "
            'Restate SDK endpoint is mounted. Response headers: {"content-type": "text/plain"}. '
            "Body: nope",
        ),
        (
            (400, [("content-type", "text/plain")], b"bad"),
            "META0003",
            "got status code '400 Bad Request'. Response headers: "
            '{"content-type": "text/plain"}. Body: bad',
        ),
    ],
)
async def test_discover_refuses_bad_endpoints(answer: Any, code: str | None, message: str) -> None:
    get = FakeGet(answer)
    with pytest.raises(DiscoveryError) as info:
        await run_discover(get)
    assert info.value.code == code
    assert info.value.message.startswith(message)
    assert info.value.status == 500
    assert len(get.calls) == 1  # none of these is retried


async def test_discover_retries_transient_failures() -> None:
    boom = (500, [("content-type", "text/plain")], b"boom")
    get = FakeGet(boom)
    with pytest.raises(DiscoveryError) as info:
        await run_discover(get)
    assert len(get.calls) == 5 and info.value.code == "META0003"
    assert "got status code '500 Internal Server Error'" in info.value.message
    # a transient failure followed by success registers fine
    get = FakeGet((503, [], b""), ok(endpoint_json([GREETER])))
    assert (await run_discover(get)).services[0].name == "Greeter"
    assert len(get.calls) == 2


async def test_discover_connection_refused_messages() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    get = FakeGet(refused)
    with pytest.raises(DiscoveryError) as info:
        await run_discover(get)
    assert len(get.calls) == 5
    assert info.value.message == (
        f"error when calling '{URI}': h2 pool connection error: Connection refused (os error 111)"
    )
    with pytest.raises(DiscoveryError) as info:
        await run_discover(FakeGet(refused), use_http_11=True)
    assert info.value.message == (
        f"error when calling '{URI}': unable to reach the remote endpoint.\nReason: client error "
        "(Connect) caused by: tcp connect error caused by: Connection refused (os error 111)"
    )
    h11_only = TransportError(
        "server possibly supports only HTTP1.1, consider discovery with --use-http1.1.",
        code="META0014",
        retryable=False,
    )
    get = FakeGet(h11_only)
    with pytest.raises(DiscoveryError) as info:
        await run_discover(get)
    assert info.value.code == "META0014" and len(get.calls) == 1


async def test_discover_typescript_max_version_workaround() -> None:
    get = FakeGet(ok(endpoint_json([GREETER]), server="restate-sdk-typescript/1.2.1"))
    with pytest.raises(DiscoveryError) as info:
        await run_discover(get)
    assert info.value.code == "META0012" and "[5, 1]" in info.value.message


class FakeStream:
    def __init__(self, status: int, headers: list[tuple[str, str]], chunks: list[bytes]) -> None:
        self.status, self.headers, self.chunks = status, headers, list(chunks)
        self.ended = False

    def end(self) -> None:
        self.ended = True

    async def response(self) -> tuple[int, list[tuple[str, str]]]:
        return self.status, self.headers

    async def read(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""


class FakePool:
    def __init__(self, stream: FakeStream | None = None, error: Exception | None = None) -> None:
        self.stream, self.error = stream, error
        self.opened: list[tuple[str, str, str]] = []

    async def open_stream(
        self, origin: str, method: str, path: str, headers: list[tuple[str, str]]
    ) -> FakeStream:
        self.opened.append((origin, method, path))
        if self.error is not None:
            raise self.error
        assert self.stream is not None
        return self.stream


async def test_default_http_get_through_an_h2_pool() -> None:
    from restate_server.schema.discovery import default_http_get

    stream = FakeStream(200, [("content-type", CT4)], [b'{"a":', b"1}"])
    pool = FakePool(stream)
    status, headers, body = await default_http_get(
        "http://h:9080/base/discover?x=1", [("accept", ACCEPT)], False, h2_pool=pool
    )
    assert (status, headers, body) == (200, [("content-type", CT4)], b'{"a":1}')
    assert pool.opened == [("http://h:9080", "GET", "/base/discover?x=1")] and stream.ended

    class ProtocolError(Exception):
        pass

    pool = FakePool(error=ProtocolError("FRAME_SIZE_ERROR"))
    with pytest.raises(TransportError) as info:
        await default_http_get("http://h:9080/discover", [], False, h2_pool=pool)
    assert info.value.code == "META0014" and not info.value.retryable
    pool = FakePool(error=ConnectionRefusedError(111, "Connection refused"))
    with pytest.raises(ConnectionRefusedError):
        await default_http_get("http://h:9080/discover", [], False, h2_pool=pool)
