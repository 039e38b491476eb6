"""Effective settings of an invocation target: handler override > service > server default.

Also the ingress input rules (what body and content type a handler accepts, with the
real server's messages) and their one-line descriptions the admin API shows.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

from restate_server.schema.model import (
    Deployment,
    HandlerSchema,
    HandlerType,
    ServiceSchema,
    ServiceType,
)


class RetryPolicySettings(msgspec.Struct, frozen=True):
    """Same fields as the invoker's retry policy, so either can serve as the default."""

    initial_interval_ms: int = 500
    exponentiation_factor: float = 2.0
    max_interval_ms: int = 60_000
    # including the first attempt; None = unlimited
    max_attempts: int | None = 70
    on_max_attempts: str = "pause"


class SchemaDefaults(msgspec.Struct, frozen=True, kw_only=True):
    """Server-wide defaults (from the configuration) for what services leave unset."""

    inactivity_timeout_ms: int = 60_000
    abort_timeout_ms: int = 600_000
    idempotency_retention_ms: int = 86_400_000
    journal_retention_ms: int = 86_400_000
    workflow_completion_retention_ms: int = 86_400_000
    # any struct with the fields of ``RetryPolicySettings`` (the invoker passes its own)
    retry_policy: Any = RetryPolicySettings()


class InvocationTargetInfo(msgspec.Struct, frozen=True, kw_only=True):
    service_name: str
    handler_name: str
    service_ty: ServiceType
    # None for plain services
    handler_ty: HandlerType | None
    deployment_id: str
    revision: int
    public: bool
    inactivity_timeout_ms: int
    abort_timeout_ms: int
    enable_lazy_state: bool
    idempotency_retention_ms: int
    journal_retention_ms: int
    workflow_completion_retention_ms: int
    # what a completed invocation is kept for: the workflow handler keeps its completion for
    # the workflow retention, everything else for the idempotency retention
    completion_retention_ms: int
    # same type as ``SchemaDefaults.retry_policy``, with service/handler overrides applied
    retry_policy: Any
    # None = no body expected
    input_content_type: str | None
    input_required: bool
    input_json_schema: Any = None
    # None = no content type on responses
    output_content_type: str | None = "application/json"
    output_set_content_type_if_empty: bool = False

    def validate_input(self, content_type: str | None, body: bytes) -> str | None:
        """None when the request passes the handler's input rules, else the reason."""
        return validate_input(
            self.input_content_type,
            self.input_required,
            self.input_json_schema is not None,
            content_type,
            body,
        )


def _first(*values: Any) -> Any:
    for value in values:
        if value is not None:
            return value
    return None


def _replace(policy: Any, **changes: Any) -> Any:
    changes = {k: v for k, v in changes.items() if v is not None}
    if not changes:
        return policy
    if isinstance(policy, msgspec.Struct):
        return msgspec.structs.replace(policy, **changes)
    return dataclasses.replace(policy, **changes)


def effective_retry_policy(
    defaults: SchemaDefaults, service: ServiceSchema, handler: HandlerSchema | None = None
) -> Any:
    h = handler
    on_max = _first(h and h.retry_policy_on_max_attempts, service.retry_policy_on_max_attempts)
    return _replace(
        defaults.retry_policy,
        initial_interval_ms=_first(
            h and h.retry_policy_initial_interval_ms, service.retry_policy_initial_interval_ms
        ),
        exponentiation_factor=_first(
            h and h.retry_policy_exponentiation_factor,
            service.retry_policy_exponentiation_factor,
        ),
        max_interval_ms=_first(
            h and h.retry_policy_max_interval_ms, service.retry_policy_max_interval_ms
        ),
        max_attempts=_first(h and h.retry_policy_max_attempts, service.retry_policy_max_attempts),
        on_max_attempts=on_max.lower() if on_max is not None else None,
    )


def workflow_completion_retention_ms(defaults: SchemaDefaults, service: ServiceSchema) -> int:
    """As the admin API shows it: the workflow handler's own value wins over the service's."""
    from_handler = next(
        (
            h.workflow_completion_retention_ms
            for h in service.handlers.values()
            if h.workflow_completion_retention_ms is not None
        ),
        None,
    )
    return _first(
        from_handler,
        service.workflow_completion_retention_ms,
        defaults.workflow_completion_retention_ms,
    )


def resolve_target(
    defaults: SchemaDefaults,
    service: ServiceSchema,
    handler: HandlerSchema,
    deployment: Deployment | None = None,
) -> InvocationTargetInfo:
    idempotency = _first(
        handler.idempotency_retention_ms,
        service.idempotency_retention_ms,
        defaults.idempotency_retention_ms,
    )
    workflow_retention = _first(
        handler.workflow_completion_retention_ms,
        service.workflow_completion_retention_ms,
        defaults.workflow_completion_retention_ms,
    )
    journal = _first(
        handler.journal_retention_ms, service.journal_retention_ms, defaults.journal_retention_ms
    )
    return InvocationTargetInfo(
        service_name=service.name,
        handler_name=handler.name,
        service_ty=service.ty,
        handler_ty=handler.ty,
        deployment_id=service.deployment_id if deployment is None else deployment.id,
        revision=service.revision,
        public=handler.public if handler.public is not None else service.public,
        inactivity_timeout_ms=_first(
            handler.inactivity_timeout_ms,
            service.inactivity_timeout_ms,
            defaults.inactivity_timeout_ms,
        ),
        abort_timeout_ms=_first(
            handler.abort_timeout_ms, service.abort_timeout_ms, defaults.abort_timeout_ms
        ),
        enable_lazy_state=bool(_first(handler.enable_lazy_state, service.enable_lazy_state)),
        idempotency_retention_ms=idempotency,
        journal_retention_ms=journal,
        workflow_completion_retention_ms=workflow_retention,
        completion_retention_ms=workflow_retention if handler.ty == "Workflow" else idempotency,
        retry_policy=effective_retry_policy(defaults, service, handler),
        input_content_type=handler.input_content_type,
        input_required=handler.input_required,
        input_json_schema=handler.input_json_schema,
        output_content_type=handler.output_content_type,
        output_set_content_type_if_empty=handler.output_set_content_type_if_empty,
    )


# --- input rules


def _content_type_matches(expected: str, got: str) -> bool:
    if expected == "*/*":
        return True
    essence = got.split(";", 1)[0].strip()
    main, sep, sub = essence.partition("/")
    if not sep:
        return False
    want_main, _, want_sub = expected.partition("/")
    return main == want_main and (want_sub == "*" or sub == want_sub)


def validate_input(
    expected: str | None,
    required: bool,
    has_json_schema: bool,
    content_type: str | None,
    body: bytes,
) -> str | None:
    """The real server's rule list: 'empty body allowed' (unless required), then the
    content type rule; the first rule that passes accepts, else the last error wins."""
    error = "Bad configuration of the input validation rules"
    if not required:
        if not body and content_type is None:
            return None
        shown = "None" if content_type is None else f'Some("{content_type}")'
        error = (
            f"Expected body and content-type to be empty, but wasn't with content-type '{shown}'"
        )
    if expected is not None:
        if content_type is None:
            return "Empty content-type"
        if not _content_type_matches(expected, content_type):
            return f"Content-type '{content_type}' does not match '{expected}'"
        if has_json_schema and not body:
            return "Empty body not allowed"
        return None
    return error


def _json_schema_label(schema: Any) -> str | None:
    if isinstance(schema, dict):
        if isinstance(schema.get("title"), str):
            return f"JSON '{schema['title']}'"
        if isinstance(schema.get("type"), str):
            return f"JSON {schema['type']}"
    return None


def describe_input(handler: HandlerSchema) -> str:
    """``input_description`` of the admin API (``application/json``, ``none``, ``JSON 'T'``)."""
    if handler.input_content_type is None:
        return "<invalid rules>" if handler.input_required else "none"
    label = _json_schema_label(handler.input_json_schema)
    return label if label is not None else handler.input_content_type


def describe_output(handler: HandlerSchema) -> str:
    label = _json_schema_label(handler.output_json_schema)
    if label is not None:
        return label
    if handler.output_content_type is None:
        return "none"
    if handler.output_set_content_type_if_empty:
        return f"optional {handler.output_content_type}"
    return handler.output_content_type
