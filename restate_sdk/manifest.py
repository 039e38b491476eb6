"""The endpoint manifest answered on ``GET /discover`` (manifest v2-v4)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from restate_sdk.definitions import (
    AnyService,
    HandlerInfo,
    HandlerOptions,
    input_schema,
    output_schema,
)

MIN_PROTOCOL_VERSION = 5
MAX_PROTOCOL_VERSION = 7
MANIFEST_MEDIA = "application/vnd.restate.endpointmanifest.v{}+json"

_HANDLER_TY = {"exclusive": "EXCLUSIVE", "shared": "SHARED", "workflow": "WORKFLOW"}


def _ms(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds() * 1000)


def _options(options: HandlerOptions, out: dict[str, Any], workflow_main: bool) -> bool:
    """Adds option fields; returns whether any needs manifest v4 (retry policies)."""
    fields: tuple[tuple[str, Any], ...] = (
        ("inactivityTimeout", _ms(options.inactivity_timeout)),
        ("abortTimeout", _ms(options.abort_timeout)),
        ("journalRetention", _ms(options.journal_retention)),
        ("idempotencyRetention", _ms(options.idempotency_retention)),
        ("ingressPrivate", options.ingress_private),
        ("enableLazyState", options.enable_lazy_state),
    )
    for key, value in fields:
        if value is not None:
            out[key] = value
    if workflow_main and options.workflow_retention is not None:
        out["workflowCompletionRetention"] = _ms(options.workflow_retention)
    policy = options.invocation_retry_policy
    if policy is None:
        return False
    retry_fields: tuple[tuple[str, Any], ...] = (
        ("retryPolicyInitialInterval", _ms(policy.initial_interval)),
        ("retryPolicyExponentiationFactor", policy.exponentiation_factor),
        ("retryPolicyMaxInterval", _ms(policy.max_interval)),
        ("retryPolicyMaxAttempts", policy.max_attempts),
        (
            "retryPolicyOnMaxAttempts",
            None if policy.on_max_attempts is None else policy.on_max_attempts.upper(),
        ),
    )
    for key, value in retry_fields:
        if value is not None:
            out[key] = value
    return True


def _handler(info: HandlerInfo) -> tuple[dict[str, Any], bool]:
    out: dict[str, Any] = {"name": info.name}
    if info.kind is not None:
        out["ty"] = _HANDLER_TY[info.kind]
    if info.has_input:
        handler_input: dict[str, Any] = {"required": False, "contentType": info.accept}
        schema = input_schema(info)
        if schema is not None:
            handler_input["jsonSchema"] = schema
        out["input"] = handler_input
    else:
        out["input"] = {}
    handler_output: dict[str, Any] = {"setContentTypeIfEmpty": False}
    if info.output_type is not type(None):
        handler_output["contentType"] = info.content_type
        schema = output_schema(info)
        if schema is not None:
            handler_output["jsonSchema"] = schema
    out["output"] = handler_output
    if info.documentation:
        out["documentation"] = info.documentation
    if info.metadata:
        out["metadata"] = info.metadata
    needs_v4 = _options(info.options, out, info.kind == "workflow")
    return out, needs_v4


def build_manifest(services: list[AnyService], protocol_mode: str) -> tuple[dict[str, Any], bool]:
    """(manifest, whether it needs manifest v4)."""
    needs_v4 = False
    out_services = []
    for service in services:
        handlers = []
        for info in service.handlers.values():
            handler, v4 = _handler(info)
            handlers.append(handler)
            needs_v4 = needs_v4 or v4
        entry: dict[str, Any] = {"name": service.name, "ty": service.kind, "handlers": handlers}
        if service.description:
            entry["documentation"] = service.description
        if service.metadata:
            entry["metadata"] = service.metadata
        needs_v4 = _options(service.options, entry, False) or needs_v4
        out_services.append(entry)
    manifest = {
        "protocolMode": protocol_mode,
        "minProtocolVersion": MIN_PROTOCOL_VERSION,
        "maxProtocolVersion": MAX_PROTOCOL_VERSION,
        "services": out_services,
    }
    return manifest, needs_v4


def negotiate_manifest_version(accept: str | None, needs_v4: bool) -> int | None:
    """The highest manifest version both sides know (v2 when no accept header is sent)."""
    if not accept:
        return None if needs_v4 else 2
    for version in (4, 3, 2):
        if MANIFEST_MEDIA.format(version) in accept:
            if needs_v4 and version < 4:
                return None
            return version
    return None


def encode_manifest(manifest: dict[str, Any]) -> bytes:
    return json.dumps(manifest, separators=(",", ":")).encode()
