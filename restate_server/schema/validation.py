"""Turning a discovered manifest service into a service revision, with the real checks.

Rules and messages follow the real server's schema updater: reserved names, the
service/handler type table, retention fields only where they make sense, handler
visibility, input/output content types.
"""

from __future__ import annotations

from restate_server.schema import manifest
from restate_server.schema.errors import SchemaError
from restate_server.schema.model import (
    HandlerSchema,
    HandlerType,
    OnMaxAttempts,
    ServiceSchema,
    ServiceSettings,
    ServiceType,
)

_SERVICE_TYPES: dict[str, ServiceType] = {
    "SERVICE": "Service",
    "VIRTUAL_OBJECT": "VirtualObject",
    "WORKFLOW": "Workflow",
}
# how the real server prints the manifest's handler type in error messages (Rust Debug)
_MANIFEST_HANDLER_DEBUG = {"WORKFLOW": "Workflow", "EXCLUSIVE": "Exclusive", "SHARED": "Shared"}
_ON_MAX_ATTEMPTS: dict[str, OnMaxAttempts] = {"PAUSE": "Pause", "KILL": "Kill"}

# (service type, manifest handler type) -> effective handler type; the code of the real
# server is authoritative here (a workflow handler without ``ty`` is *shared*)
_HANDLER_TYPES: dict[tuple[ServiceType, str | None], HandlerType | None] = {
    ("Service", None): None,
    ("Service", "SHARED"): None,
    ("VirtualObject", None): "Exclusive",
    ("VirtualObject", "EXCLUSIVE"): "Exclusive",
    ("VirtualObject", "SHARED"): "Shared",
    ("Workflow", None): "Shared",
    ("Workflow", "SHARED"): "Shared",
    ("Workflow", "WORKFLOW"): "Workflow",
}


def service_type_of(service: manifest.Service) -> ServiceType:
    return _SERVICE_TYPES[service.ty]


def validate_service_name(name: str) -> None:
    lower = name.lower()
    if lower.startswith("restate") or lower == "openapi":
        raise SchemaError(
            f"cannot insert/modify service '{name}' as it contains a reserved name",
            code="META0005",
        )


def _max_attempts(value: int | None) -> int | None:
    # the real server stores a NonZero count: 0 becomes 1
    return None if value is None else max(1, value)


def build_service(service: manifest.Service, *, revision: int, deployment_id: str) -> ServiceSchema:
    """A new revision built only from the manifest (PATCHed settings are not carried over)."""
    ty = service_type_of(service)
    public = not service.ingress_private if service.ingress_private is not None else True
    handlers: dict[str, HandlerSchema] = {}
    for handler in service.handlers:
        handlers[handler.name] = build_handler(service.name, ty, public, handler)
    declared = ServiceSettings(
        public=public,
        idempotency_retention_ms=service.idempotency_retention,
        journal_retention_ms=service.journal_retention,
        inactivity_timeout_ms=service.inactivity_timeout,
        abort_timeout_ms=service.abort_timeout,
    )
    return ServiceSchema(
        name=service.name,
        ty=ty,
        revision=revision,
        deployment_id=deployment_id,
        public=public,
        handlers=handlers,
        documentation=service.documentation,
        metadata=dict(service.metadata or {}),
        idempotency_retention_ms=service.idempotency_retention,
        journal_retention_ms=service.journal_retention,
        inactivity_timeout_ms=service.inactivity_timeout,
        abort_timeout_ms=service.abort_timeout,
        enable_lazy_state=service.enable_lazy_state,
        retry_policy_initial_interval_ms=service.retry_policy_initial_interval,
        retry_policy_exponentiation_factor=service.retry_policy_exponentiation_factor,
        retry_policy_max_attempts=_max_attempts(service.retry_policy_max_attempts),
        retry_policy_max_interval_ms=service.retry_policy_max_interval,
        retry_policy_on_max_attempts=_on_max_attempts(service.retry_policy_on_max_attempts),
        declared=declared,
    )


def _on_max_attempts(value: str | None) -> OnMaxAttempts | None:
    return None if value is None else _ON_MAX_ATTEMPTS[value]


def build_handler(
    service_name: str, service_ty: ServiceType, service_public: bool, handler: manifest.Handler
) -> HandlerSchema:
    key = (service_ty, handler.ty)
    if key not in _HANDLER_TYPES:
        shown = "None" if handler.ty is None else f"Some({_MANIFEST_HANDLER_DEBUG[handler.ty]})"
        raise SchemaError(
            f"invalid combination of service type and handler type '({service_ty}, {shown})'"
        )
    ty = _HANDLER_TYPES[key]
    if handler.workflow_completion_retention is not None and ty != "Workflow":
        raise SchemaError(
            f"{handler.name} sets the workflow_completion_retention, "
            "but it's not a WORKFLOW handler"
        )
    if handler.idempotency_retention is not None and ty == "Workflow":
        raise SchemaError(
            f"{handler.name} sets the idempotency_retention, but it's a WORKFLOW handler"
        )
    if not service_public and handler.ingress_private is False:
        raise SchemaError(
            f"The service {service_name} is private, but the {handler.name} is explicitly set "
            "as public. This is not supported. Please make the service public, and hide the "
            "individual handlers"
        )

    input_content_type: str | None = "*/*"
    input_required = False
    input_json_schema = None
    if handler.input is not None:
        input_required = bool(handler.input.required)
        input_content_type = None
        if handler.input.content_type is not None:
            input_content_type = _parse_input_content_type(handler.name, handler.input.content_type)
            input_json_schema = handler.input.json_schema

    output_content_type: str | None = "application/json"
    set_if_empty = False
    output_json_schema = None
    if handler.output is not None:
        output_content_type = handler.output.content_type
        if output_content_type is not None:
            _check_header_value(output_content_type)
            set_if_empty = bool(handler.output.set_content_type_if_empty)
            output_json_schema = handler.output.json_schema

    return HandlerSchema(
        name=handler.name,
        ty=ty,
        public=None if handler.ingress_private is None else not handler.ingress_private,
        input_content_type=input_content_type,
        input_required=input_required,
        input_json_schema=input_json_schema,
        output_content_type=output_content_type,
        output_set_content_type_if_empty=set_if_empty,
        output_json_schema=output_json_schema,
        documentation=handler.documentation,
        metadata=dict(handler.metadata or {}),
        idempotency_retention_ms=handler.idempotency_retention,
        journal_retention_ms=handler.journal_retention,
        workflow_completion_retention_ms=handler.workflow_completion_retention,
        inactivity_timeout_ms=handler.inactivity_timeout,
        abort_timeout_ms=handler.abort_timeout,
        enable_lazy_state=handler.enable_lazy_state,
        retry_policy_initial_interval_ms=handler.retry_policy_initial_interval,
        retry_policy_exponentiation_factor=handler.retry_policy_exponentiation_factor,
        retry_policy_max_attempts=_max_attempts(handler.retry_policy_max_attempts),
        retry_policy_max_interval_ms=handler.retry_policy_max_interval,
        retry_policy_on_max_attempts=_on_max_attempts(handler.retry_policy_on_max_attempts),
    )


def _parse_input_content_type(handler_name: str, text: str) -> str:
    """Normalise ``type/subtype``, ``type/*`` or ``*/*``; reject what the real server rejects."""
    main, sep, sub = text.strip().partition("/")
    reason = None
    if not sep:
        reason = "must contain one /"
    elif main == "*" and sub != "*":
        reason = "the wildcard format */subType is not supported"
    if reason is not None:
        raise SchemaError(
            f"the handler '{handler_name}' input content-type is not valid: "
            f"can't parse the content-type '{text}': {reason}"
        )
    return f"{main}/{sub}"


def _check_header_value(text: str) -> None:
    if any((ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F for ch in text):
        # the real server names the content type where the handler name should be
        raise SchemaError(
            f"the handler '{text}' output content-type is not valid: failed to parse header value"
        )
