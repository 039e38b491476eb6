"""JSON shapes of the admin API (``ServiceMetadata``, ``HandlerMetadata``, deployments).

Key order and the omitted-when-unset rules follow what restate-server 1.7.12 sends
(see ``admin-openapi.json`` and the recorded transcripts): durations in the friendly
format, handler ``ty`` omitted for plain services, ``workflow_completion_retention``
only on workflows, per-handler overrides only when set.
"""

from __future__ import annotations

import datetime
from typing import Any

from restate_server.durations import format_duration
from restate_server.schema.model import Deployment, HandlerSchema, ServiceSchema
from restate_server.schema.registry import SchemaRegistry
from restate_server.schema.resolve import (
    SchemaDefaults,
    describe_input,
    describe_output,
    workflow_completion_retention_ms,
)


def format_timestamp(ms: int) -> str:
    """RFC 3339 with nanoseconds, as the real admin API prints ``created_at``."""
    moment = datetime.datetime.fromtimestamp(ms // 1000, tz=datetime.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}000000Z"


def _info(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def _inactivity_note(ms: int, what: str) -> dict[str, Any]:
    return _info(
        "RT0021",
        f"The configured inactivity_timeout {format_duration(ms)} will not be applied because "
        f"the {what} is exposed in Request/Response mode.",
    )


def handler_metadata(
    handler: HandlerSchema, service: ServiceSchema, request_response: bool
) -> dict[str, Any]:
    out: dict[str, Any] = {"name": handler.name}
    if handler.ty is not None:
        out["ty"] = handler.ty
    if handler.documentation is not None:
        out["documentation"] = handler.documentation
    if handler.metadata:
        out["metadata"] = handler.metadata
    if handler.idempotency_retention_ms is not None:
        out["idempotency_retention"] = format_duration(handler.idempotency_retention_ms)
    if handler.journal_retention_ms is not None:
        out["journal_retention"] = format_duration(handler.journal_retention_ms)
    if handler.inactivity_timeout_ms is not None and not request_response:
        out["inactivity_timeout"] = format_duration(handler.inactivity_timeout_ms)
    if handler.abort_timeout_ms is not None:
        out["abort_timeout"] = format_duration(handler.abort_timeout_ms)
    if handler.enable_lazy_state is not None:
        out["enable_lazy_state"] = handler.enable_lazy_state
    out["public"] = handler.public if handler.public is not None else service.public
    out["input_description"] = describe_input(handler)
    out["output_description"] = describe_output(handler)
    if handler.input_json_schema is not None:
        out["input_json_schema"] = handler.input_json_schema
    if handler.output_json_schema is not None:
        out["output_json_schema"] = handler.output_json_schema
    retry: dict[str, Any] = {}
    if handler.retry_policy_initial_interval_ms is not None:
        retry["initial_interval"] = format_duration(handler.retry_policy_initial_interval_ms)
    if handler.retry_policy_exponentiation_factor is not None:
        retry["exponentiation_factor"] = float(handler.retry_policy_exponentiation_factor)
    retry["max_attempts"] = handler.retry_policy_max_attempts
    if handler.retry_policy_max_interval_ms is not None:
        retry["max_interval"] = format_duration(handler.retry_policy_max_interval_ms)
    if handler.retry_policy_on_max_attempts is not None:
        retry["on_max_attempts"] = handler.retry_policy_on_max_attempts
    out["retry_policy"] = retry
    if handler.inactivity_timeout_ms is not None and request_response:
        out["info"] = [_inactivity_note(handler.inactivity_timeout_ms, "handler")]
    return out


def _service_retry_policy(defaults: SchemaDefaults, service: ServiceSchema) -> dict[str, Any]:
    policy = defaults.retry_policy
    initial = service.retry_policy_initial_interval_ms
    factor = service.retry_policy_exponentiation_factor
    max_attempts = service.retry_policy_max_attempts
    max_interval = service.retry_policy_max_interval_ms
    on_max = service.retry_policy_on_max_attempts
    if initial is None:
        initial = policy.initial_interval_ms
    if factor is None:
        factor = policy.exponentiation_factor
    if max_attempts is None:
        max_attempts = policy.max_attempts
    if max_interval is None:
        max_interval = policy.max_interval_ms
    if on_max is None:
        on_max = str(policy.on_max_attempts).capitalize()
    return {
        "initial_interval": format_duration(initial),
        "exponentiation_factor": float(factor),
        "max_attempts": max_attempts,
        "max_interval": None if max_interval is None else format_duration(max_interval),
        "on_max_attempts": on_max,
    }


def service_metadata(
    registry: SchemaRegistry, service: ServiceSchema, deployment: Deployment | None = None
) -> dict[str, Any]:
    defaults = registry.defaults
    if deployment is None:
        deployment = registry.get_deployment(service.deployment_id)
    request_response = deployment is not None and deployment.protocol_type == "RequestResponse"
    out: dict[str, Any] = {
        "name": service.name,
        "ty": service.ty,
        "handlers": [
            handler_metadata(h, service, request_response) for h in service.handlers.values()
        ],
    }
    if service.documentation is not None:
        out["documentation"] = service.documentation
    if service.metadata:
        out["metadata"] = service.metadata
    out["deployment_id"] = service.deployment_id
    out["revision"] = service.revision
    out["public"] = service.public
    idempotency = service.idempotency_retention_ms
    out["idempotency_retention"] = format_duration(
        idempotency if idempotency is not None else defaults.idempotency_retention_ms
    )
    if service.ty == "Workflow":
        out["workflow_completion_retention"] = format_duration(
            workflow_completion_retention_ms(defaults, service)
        )
    journal = service.journal_retention_ms
    if journal is None and defaults.journal_retention_ms > 0:
        journal = defaults.journal_retention_ms
    if journal is not None:
        out["journal_retention"] = format_duration(journal)
    if request_response:
        inactivity = 0
    elif service.inactivity_timeout_ms is not None:
        inactivity = service.inactivity_timeout_ms
    else:
        inactivity = defaults.inactivity_timeout_ms
    out["inactivity_timeout"] = format_duration(inactivity)
    abort = service.abort_timeout_ms
    out["abort_timeout"] = format_duration(
        abort if abort is not None else defaults.abort_timeout_ms
    )
    out["enable_lazy_state"] = bool(service.enable_lazy_state)
    out["retry_policy"] = _service_retry_policy(defaults, service)
    if service.inactivity_timeout_ms is not None and request_response:
        out["info"] = [_inactivity_note(service.inactivity_timeout_ms, "service")]
    return out


def _deployment_head(deployment: Deployment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": deployment.id,
        "uri": deployment.uri,
        "protocol_type": deployment.protocol_type,
        "http_version": deployment.http_version,
    }
    if deployment.additional_headers:
        out["additional_headers"] = deployment.additional_headers
    if deployment.metadata:
        out["metadata"] = deployment.metadata
    out["created_at"] = format_timestamp(deployment.created_at_ms)
    out["min_protocol_version"] = deployment.min_protocol_version
    out["max_protocol_version"] = deployment.max_protocol_version
    if deployment.sdk_version is not None:
        out["sdk_version"] = deployment.sdk_version
    return out


def deployment_summary(deployment: Deployment) -> dict[str, Any]:
    """An entry of ``GET /deployments``: services as name/revision pairs."""
    out = _deployment_head(deployment)
    out["services"] = [
        {"name": name, "revision": revision} for name, revision in deployment.services.items()
    ]
    return out


def deployment_detail(
    registry: SchemaRegistry, deployment: Deployment, services: list[ServiceSchema]
) -> dict[str, Any]:
    """``GET /deployments/{id}``: services in full, as this deployment serves them."""
    out = _deployment_head(deployment)
    out["services"] = [service_metadata(registry, s, deployment) for s in services]
    return out


def register_response(
    registry: SchemaRegistry, deployment: Deployment, services: list[ServiceSchema]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": deployment.id,
        "services": [service_metadata(registry, s, deployment) for s in services],
        "min_protocol_version": deployment.min_protocol_version,
        "max_protocol_version": deployment.max_protocol_version,
    }
    if deployment.sdk_version is not None:
        out["sdk_version"] = deployment.sdk_version
    return out
