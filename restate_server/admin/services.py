"""``/services``: list, describe, modify settings, handlers, per-service OpenAPI, state."""

from __future__ import annotations

from typing import Any

from restate_server.admin.errors import (
    ApiError,
    ExtractionError,
    empty_response,
    json_response,
    not_found,
    schema_error,
)
from restate_server.admin.extract import (
    describe_value,
    optional_bool,
    optional_duration_ms,
    read_json,
    shape_error,
)
from restate_server.admin.render import handler_metadata, service_metadata
from restate_server.admin.routing import Call, Router
from restate_server.admin.service_openapi import service_openapi
from restate_server.http_server import Response
from restate_server.schema.errors import SchemaError
from restate_server.schema.model import ServiceSchema
from restate_server.schema.registry import ServicePatch


def _service(call: Call) -> ServiceSchema:
    name = call.params["service"]
    service = call.state.registry.get_service(name)
    if service is None:
        raise not_found("service", name)
    return service


async def list_services(call: Call) -> Response:
    registry = call.state.registry
    return json_response(
        {"services": [service_metadata(registry, s) for s in registry.list_services()]}
    )


async def get_service(call: Call) -> Response:
    return json_response(service_metadata(call.state.registry, _service(call)))


# ModifyServiceRequest's fields in declaration order: serde also reads the struct from a
# JSON array of up to this many values, in this order (verified against 1.7.12)
_PATCH_FIELDS = (
    "public",
    "idempotency_retention",
    "workflow_completion_retention",
    "journal_retention",
    "inactivity_timeout",
    "abort_timeout",
)
_SCOPE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_SCOPE_MAX_BYTES = 36


def _parse_patch(body: Any) -> ServicePatch:
    if isinstance(body, list):
        if len(body) > len(_PATCH_FIELDS):
            raise ExtractionError(
                400, "Failed to parse the request body as JSON: trailing characters"
            )
        body = dict(zip(_PATCH_FIELDS, body, strict=False))
    if not isinstance(body, dict):
        raise shape_error(
            f"invalid type: {describe_value(body)}, expected struct ModifyServiceRequest"
        )
    return ServicePatch(
        public=optional_bool(body, "public"),
        idempotency_retention_ms=optional_duration_ms(body, "idempotency_retention"),
        workflow_completion_retention_ms=optional_duration_ms(
            body, "workflow_completion_retention"
        ),
        journal_retention_ms=optional_duration_ms(body, "journal_retention"),
        inactivity_timeout_ms=optional_duration_ms(body, "inactivity_timeout"),
        abort_timeout_ms=optional_duration_ms(body, "abort_timeout"),
    )


async def modify_service(call: Call) -> Response:
    patch = _parse_patch(await read_json(call.request))
    registry = call.state.registry
    if patch.is_empty():
        return await get_service(call)
    try:
        service = registry.modify_service(call.params["service"], patch)
    except SchemaError as exc:
        raise schema_error(exc) from None
    return json_response(service_metadata(registry, service))


async def list_handlers(call: Call) -> Response:
    service = _service(call)
    deployment = call.state.registry.get_deployment(service.deployment_id)
    request_response = deployment is not None and deployment.protocol_type == "RequestResponse"
    return json_response(
        {
            "handlers": [
                handler_metadata(h, service, request_response) for h in service.handlers.values()
            ]
        }
    )


async def get_handler(call: Call) -> Response:
    service = _service(call)
    name = call.params["handler"]
    handler = service.handlers.get(name)
    if handler is None:
        raise ApiError(
            404, f"The requested handler '{name}' on service '{service.name}' does not exist"
        )
    deployment = call.state.registry.get_deployment(service.deployment_id)
    request_response = deployment is not None and deployment.protocol_type == "RequestResponse"
    return json_response(handler_metadata(handler, service, request_response))


async def get_service_openapi(call: Call) -> Response:
    service = _service(call)
    return json_response(service_openapi(service, call.state.ingress_endpoint))


def _state_value(key: str, value: Any) -> bytes:
    """A byte array, or a string taken as its UTF-8 bytes (as serde reads ``Bytes``)."""
    if isinstance(value, str):
        return value.encode()
    if not isinstance(value, list):
        raise shape_error(
            f"new_state.{key}: invalid type: {describe_value(value)}, expected byte array"
        )
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int):
            raise shape_error(
                f"new_state.{key}[{index}]: invalid type: {describe_value(item)}, expected u8"
            )
        if not 0 <= item <= 255:
            raise shape_error(
                f"new_state.{key}[{index}]: invalid value: {describe_value(item)}, expected u8"
            )
    return bytes(value)


async def modify_service_state(call: Call) -> Response:
    body = await read_json(call.request)
    if not isinstance(body, dict):
        raise shape_error(
            f"invalid type: {describe_value(body)}, expected struct ModifyServiceStateRequest"
        )
    object_key = body.get("object_key")
    if not isinstance(object_key, str):
        raise shape_error(
            "missing field `object_key`"
            if object_key is None
            else f"object_key: invalid type: {describe_value(object_key)}, expected a string"
        )
    version = body.get("version")
    if version is not None and not isinstance(version, str):
        raise shape_error(f"version: invalid type: {describe_value(version)}, expected a string")
    raw_state = body.get("new_state")
    if not isinstance(raw_state, dict):
        raise shape_error(
            "missing field `new_state`"
            if raw_state is None
            else f"new_state: invalid type: {describe_value(raw_state)}, expected a map"
        )
    new_state = {key: _state_value(key, value) for key, value in raw_state.items()}
    scope = body.get("scope")
    if scope is not None and not isinstance(scope, str):
        raise shape_error(f"scope: invalid type: {describe_value(scope)}, expected a string")

    name = call.params["service"]
    service = call.state.registry.get_service(name)
    if service is not None:
        if service.ty == "Service":
            raise ApiError(400, "Cannot modify state for service type Service")
    elif new_state:
        # clearing the state of a removed service stays possible
        raise not_found("service", name)
    if scope is not None:
        _check_scope(scope)
    invocations = call.state.invocations
    modify = getattr(invocations, "modify_state", None)
    if modify is None:
        raise ApiError(501, "State modification is not available on this server")
    if scope is None:
        # answered once the partition has committed the mutation (applied or queued)
        await modify(name, object_key, new_state, version)
    # else: a scoped instance (scoped virtual objects, off by default in 1.7) that no
    # invocation of ours can see; the real server accepts it just the same
    return empty_response(202)


def _check_scope(scope: str) -> None:
    """The real server's scope rules; it answers 500 for a bad one, we answer 400 (the
    request is at fault)."""
    problem = None
    if not scope:
        problem = "value cannot be empty"
    elif len(scope.encode()) > _SCOPE_MAX_BYTES:
        problem = f"value too long: {len(scope.encode())} bytes (max {_SCOPE_MAX_BYTES})"
    elif not set(scope) <= _SCOPE_CHARS:
        problem = "value contains characters outside the allowed set [a-zA-Z0-9_.-]"
    if problem is not None:
        raise ApiError(400, f"bad scope: {problem}")


def add_routes(router: Router) -> None:
    router.add("GET", "/services", list_services)
    router.add("GET", "/services/{service}", get_service)
    router.add("PATCH", "/services/{service}", modify_service)
    router.add("GET", "/services/{service}/openapi", get_service_openapi)
    router.add("POST", "/services/{service}/state", modify_service_state)
    router.add("GET", "/services/{service}/handlers", list_handlers)
    router.add("GET", "/services/{service}/handlers/{handler}", get_handler)
