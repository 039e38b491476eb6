"""What the registry stores: deployments, service revisions and their handlers.

Values a manifest left unset stay ``None`` here; effective values (server defaults
filled in, handler overrides applied) are computed by ``resolve.py``. Durations are
integer milliseconds. String enums use the admin API spelling (``VirtualObject``,
``Exclusive``, ``BidiStream``, ``Pause``) so the admin layer can print them as they are.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

ServiceType = Literal["Service", "VirtualObject", "Workflow"]
HandlerType = Literal["Exclusive", "Shared", "Workflow"]
ProtocolType = Literal["BidiStream", "RequestResponse"]
HttpVersion = Literal["HTTP/2.0", "HTTP/1.1"]
OnMaxAttempts = Literal["Pause", "Kill"]


class HandlerSchema(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    # None for the handlers of plain services (the admin API omits the field then)
    ty: HandlerType | None = None
    # override of the service's ``public``; None = follow the service
    public: bool | None = None

    # --- input rules (ingress validation). An absent manifest ``input`` is stored as
    # content type "*/*", not required, which is what the real server assumes.
    # None = "no body expected".
    input_content_type: str | None = "*/*"
    input_required: bool = False
    input_json_schema: Any = None

    # --- output: None = no content type is set on responses
    output_content_type: str | None = "application/json"
    output_set_content_type_if_empty: bool = False
    output_json_schema: Any = None

    documentation: str | None = None
    metadata: dict[str, str] = {}

    # --- per-handler overrides (None = use the service's value, then the server default)
    idempotency_retention_ms: int | None = None
    journal_retention_ms: int | None = None
    workflow_completion_retention_ms: int | None = None
    inactivity_timeout_ms: int | None = None
    abort_timeout_ms: int | None = None
    enable_lazy_state: bool | None = None
    retry_policy_initial_interval_ms: int | None = None
    retry_policy_exponentiation_factor: float | None = None
    retry_policy_max_attempts: int | None = None
    retry_policy_max_interval_ms: int | None = None
    retry_policy_on_max_attempts: OnMaxAttempts | None = None


class ServiceSettings(msgspec.Struct, kw_only=True, omit_defaults=True, frozen=True):
    """The service-level knobs ``PATCH /services/{name}`` can change."""

    public: bool = True
    idempotency_retention_ms: int | None = None
    journal_retention_ms: int | None = None
    workflow_completion_retention_ms: int | None = None
    inactivity_timeout_ms: int | None = None
    abort_timeout_ms: int | None = None


class ServiceSchema(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One revision of a service, as served by one deployment."""

    name: str
    ty: ServiceType
    revision: int
    deployment_id: str
    public: bool = True
    handlers: dict[str, HandlerSchema] = {}
    documentation: str | None = None
    metadata: dict[str, str] = {}

    idempotency_retention_ms: int | None = None
    journal_retention_ms: int | None = None
    workflow_completion_retention_ms: int | None = None
    inactivity_timeout_ms: int | None = None
    abort_timeout_ms: int | None = None
    enable_lazy_state: bool | None = None

    # None = the server default retry policy's value
    retry_policy_initial_interval_ms: int | None = None
    retry_policy_exponentiation_factor: float | None = None
    retry_policy_max_attempts: int | None = None
    retry_policy_max_interval_ms: int | None = None
    retry_policy_on_max_attempts: OnMaxAttempts | None = None

    # what the manifest declared for the PATCH-able settings: a PATCH changes the fields
    # above, a new revision starts again from these
    declared: ServiceSettings = ServiceSettings()


class Deployment(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    # normalised base URI (``http://host:port/`` when the path is empty)
    uri: str
    protocol_type: ProtocolType
    http_version: HttpVersion
    use_http_11: bool = False
    additional_headers: dict[str, str] = {}
    created_at_ms: int
    min_protocol_version: int
    max_protocol_version: int
    sdk_version: str | None = None
    metadata: dict[str, str] = {}
    # service name -> revision served by this deployment
    services: dict[str, int] = {}


class SchemaSnapshot(msgspec.Struct, kw_only=True):
    """The whole registry state, persisted as one record."""

    version: int = 0
    deployments: dict[str, Deployment] = {}
    # deployment id -> service name -> the revision that deployment serves
    services: dict[str, dict[str, ServiceSchema]] = {}


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(SchemaSnapshot)


def encode_snapshot(snapshot: SchemaSnapshot) -> bytes:
    return _ENCODER.encode(snapshot)


def decode_snapshot(data: bytes) -> SchemaSnapshot:
    return _DECODER.decode(data)
