"""``/deployments``: register (discovery), list, describe, update, remove."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import msgspec

from restate_server.admin.errors import (
    ApiError,
    EmptyError,
    ExtractionError,
    empty_response,
    invalid_field,
    json_response,
    not_found,
    schema_error,
)
from restate_server.admin.extract import (
    path_error,
    query_bool,
    read_json,
    shape_error,
    uri_problem,
)
from restate_server.admin.render import deployment_detail, deployment_summary, register_response
from restate_server.admin.routing import ApiVersion, Call, Router
from restate_server.http_server import Response
from restate_server.schema.discovery import DiscoveryResult, normalize_uri
from restate_server.schema.errors import DiscoveryError, SchemaError
from restate_server.schema.ids import IdError, check_deployment_id
from restate_server.schema.registry import RegistrationResult

_REGISTER_SHAPE_ERROR = "data did not match any variant of untagged enum RegisterDeploymentRequest"
_UPDATE_SHAPE_ERROR = "data did not match any variant of untagged enum UpdateDeploymentRequest"
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")


class RegisterRequest(msgspec.Struct, kw_only=True):
    uri: str
    additional_headers: dict[str, str] | None = None
    metadata: dict[str, str] = {}
    use_http_11: bool = False
    breaking: bool = False
    force: bool | None = None
    dry_run: bool = False
    # ``{"GoogleIdToken": {...}}``: checked by ``_valid_auth``
    auth: Any = None


class LambdaRequest(msgspec.Struct, kw_only=True):
    """The other variant of the real server's (untagged) registration request."""

    arn: str
    assume_role_arn: str | None = None
    additional_headers: dict[str, str] | None = None
    metadata: dict[str, str] = {}
    dry_run: bool = False
    breaking: bool = False
    force: bool | None = None


class GoogleIdTokenAuth(msgspec.Struct, kw_only=True):
    audience: str | None = None
    impersonate_service_account: str | None = None


class UpdateRequest(msgspec.Struct, kw_only=True):
    uri: str | None = None
    additional_headers: dict[str, str] | None = None
    use_http_11: bool | None = None
    dry_run: bool = False
    overwrite: bool = False


def _valid_headers(headers: dict[str, str] | None) -> bool:
    if headers is None:
        return True
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            return False
        if any(ch in "\r\n\0" or ord(ch) > 0xFF for ch in value):
            return False
    return True


def _valid_auth(auth: Any) -> bool:
    """``null`` or the one variant of ``HttpAuth``, ``{"GoogleIdToken": {...}}``."""
    if auth is None:
        return True
    if not isinstance(auth, dict) or list(auth) != ["GoogleIdToken"]:
        return False
    try:
        msgspec.convert(auth["GoogleIdToken"], GoogleIdTokenAuth)
    except msgspec.ValidationError:
        return False
    return True


def _lower_headers(headers: dict[str, str] | None) -> dict[str, str]:
    return {name.lower(): value for name, value in (headers or {}).items()}


def _convert(obj: Any, shape: type[msgspec.Struct], error: str) -> Any:
    try:
        parsed = msgspec.convert(obj, shape)
    except msgspec.ValidationError:
        raise shape_error(error) from None
    uri = getattr(parsed, "uri", None)
    if uri is not None and uri_problem(uri) is not None:
        raise shape_error(error)
    if not _valid_headers(parsed.additional_headers):
        raise shape_error(error)
    if not _valid_auth(getattr(parsed, "auth", None)):
        raise shape_error(error)
    return parsed


def _parse_register(body: Any) -> RegisterRequest:
    """The HTTP variant, else the Lambda one (refused: not supported), else 422: the
    order in which the real server tries its untagged enum's variants."""
    try:
        request: RegisterRequest = _convert(body, RegisterRequest, _REGISTER_SHAPE_ERROR)
    except ExtractionError:
        _convert(body, LambdaRequest, _REGISTER_SHAPE_ERROR)
        raise invalid_field("arn", "Lambda deployments are not supported by this server") from None
    if request.auth is not None:
        # the real server mints a Google ID token per request; registering without one
        # would call the endpoint unauthenticated
        raise invalid_field("auth", "GoogleIdToken authentication is not supported by this server")
    return request


def _check_absolute(uri: str) -> None:
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        raise invalid_field(
            "uri", f"The provided uri {uri} is not absolute, only absolute URIs can be used."
        )


def _deployment_id(call: Call) -> str:
    value = call.params["deployment"]
    try:
        check_deployment_id(value)
    except IdError as exc:
        raise path_error("deployment", value, str(exc)) from None
    return value


async def _discover(
    call: Call, uri: str, use_http_11: bool, headers: dict[str, str]
) -> DiscoveryResult:
    try:
        return await call.state.discover(uri, use_http_11=use_http_11, additional_headers=headers)
    except DiscoveryError as exc:
        raise schema_error(exc) from None


async def _register(
    call: Call, request: RegisterRequest, uri: str, headers: dict[str, str], force: bool
) -> RegistrationResult:
    registry = call.state.registry
    existing = registry.find_deployment(uri)
    if existing is not None and not force:
        # already registered: nothing changes, the endpoint is not even contacted
        return RegistrationResult(
            outcome="Unchanged",
            deployment=existing,
            services=registry.deployment_services(existing.id),
        )
    discovery = await _discover(call, uri, request.use_http_11, headers)
    try:
        return registry.apply_registration(
            uri,
            discovery,
            use_http_11=request.use_http_11,
            additional_headers=headers,
            metadata=request.metadata,
            force=force,
            breaking=request.breaking,
            dry_run=request.dry_run,
        )
    except SchemaError as exc:
        raise schema_error(exc) from None


async def create_deployment(call: Call) -> Response:
    request = _parse_register(await read_json(call.request))
    _check_absolute(request.uri)
    # an omitted ``force`` means true only on the old API versions (verified: /v2 overwrites)
    force = request.force
    if force is None:
        force = call.version in (ApiVersion.V1, ApiVersion.V2)
    uri = normalize_uri(request.uri)
    headers = _lower_headers(request.additional_headers)
    registry = call.state.registry

    async with call.state.registration_lock:
        result = await _register(call, request, uri, headers, force)
    new_api = call.version == ApiVersion.UNKNOWN or call.version >= ApiVersion.V3
    if result.outcome == "Created":
        status = 201
    elif result.outcome == "Unchanged":
        if not new_api:
            raise ApiError(409, f"Conflict: deployment {result.deployment.id} already exists")
        status = 200
    else:
        status = 200 if new_api else 201
    return json_response(
        register_response(registry, result.deployment, result.services),
        status,
        {"location": f"deployments/{result.deployment.id}"},
    )


async def list_deployments(call: Call) -> Response:
    registry = call.state.registry
    return json_response(
        {"deployments": [deployment_summary(d) for d in registry.list_deployments()]}
    )


async def get_deployment(call: Call) -> Response:
    deployment_id = _deployment_id(call)
    registry = call.state.registry
    deployment = registry.get_deployment(deployment_id)
    if deployment is None:
        raise not_found("deployment", deployment_id)
    return json_response(
        deployment_detail(registry, deployment, registry.deployment_services(deployment_id))
    )


async def delete_deployment(call: Call) -> Response:
    deployment_id = _deployment_id(call)
    if query_bool(call.request, "force") is not True:
        # graceful removal (drain first) is not implemented by the real server either
        raise EmptyError(501)
    if not call.state.registry.remove_deployment(deployment_id):
        raise ApiError(
            404, f"not found in the schema registry: deployment with id '{deployment_id}'"
        )
    return empty_response(202)


async def update_deployment(call: Call) -> Response:
    if call.request.method == "PUT" and call.version != ApiVersion.V2:
        raise ApiError(405, "PUT deployment is deprecated, use PATCH instead")
    deployment_id = _deployment_id(call)
    body = await read_json(call.request)
    request: UpdateRequest = _convert(body, UpdateRequest, _UPDATE_SHAPE_ERROR)
    registry = call.state.registry
    if request.uri is None and request.additional_headers is None and request.use_http_11 is None:
        deployment = registry.get_deployment(deployment_id)
        if deployment is None:
            raise not_found("deployment", deployment_id)
        return json_response(
            deployment_detail(registry, deployment, registry.deployment_services(deployment_id))
        )
    if request.uri is not None:
        _check_absolute(request.uri)
    existing = registry.get_deployment(deployment_id)
    if existing is None:
        raise not_found("deployment", deployment_id)
    if request.uri is not None:
        uri = normalize_uri(request.uri)
        use_http_11 = bool(request.use_http_11)
    else:
        # observed on restate-server 1.7.12: without a new ``uri`` the HTTP version stays
        # what the deployment uses, whatever ``use_http_11`` says
        uri = existing.uri
        use_http_11 = existing.http_version == "HTTP/1.1"
    headers = (
        _lower_headers(request.additional_headers)
        if request.additional_headers is not None
        else existing.additional_headers
    )
    async with call.state.registration_lock:
        discovery = await _discover(call, uri, use_http_11, headers)
        try:
            result = registry.update_deployment(
                deployment_id,
                discovery,
                uri=uri,
                use_http_11=use_http_11,
                additional_headers=headers,
                overwrite=request.overwrite,
                dry_run=request.dry_run,
            )
        except SchemaError as exc:
            raise schema_error(exc) from None
    return json_response(deployment_detail(registry, result.deployment, result.services))


def add_routes(router: Router) -> None:
    router.add("GET", "/deployments", list_deployments)
    router.add("POST", "/deployments", create_deployment)
    router.add("GET", "/deployments/{deployment}", get_deployment)
    router.add("DELETE", "/deployments/{deployment}", delete_deployment)
    router.add("PATCH", "/deployments/{deployment}", update_deployment)
    router.add("PUT", "/deployments/{deployment}", update_deployment)
