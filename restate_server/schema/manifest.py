"""The endpoint manifest an SDK answers on ``GET /discover`` (manifest versions 1 to 4).

Field names follow the published JSON schema (camelCase on the wire). Unlike the real
server, unknown fields are ignored: being lenient costs nothing and survives SDKs that
add fields. Name patterns and integer ranges are checked while decoding, as the real
server's generated parser does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

SERVICE_NAME_PATTERN = r"^([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9._-]*$"
HANDLER_NAME_PATTERN = r"^([a-zA-Z]|_[a-zA-Z0-9])[a-zA-Z0-9_]*$"

Millis = Annotated[int, msgspec.Meta(ge=0)]
Count = Annotated[int, msgspec.Meta(ge=0)]
ProtocolVersion = Annotated[int, msgspec.Meta(ge=1)]


class InputPayload(msgspec.Struct, rename="camel", omit_defaults=True):
    required: bool | None = None
    content_type: str | None = None
    json_schema: Any = None


class OutputPayload(msgspec.Struct, rename="camel", omit_defaults=True):
    content_type: str | None = None
    set_content_type_if_empty: bool | None = None
    json_schema: Any = None


class Handler(msgspec.Struct, rename="camel", omit_defaults=True):
    name: Annotated[str, msgspec.Meta(pattern=HANDLER_NAME_PATTERN)]
    ty: Literal["WORKFLOW", "EXCLUSIVE", "SHARED"] | None = None
    input: InputPayload | None = None
    output: OutputPayload | None = None
    documentation: str | None = None
    metadata: dict[str, str] | None = None
    inactivity_timeout: Millis | None = None
    abort_timeout: Millis | None = None
    journal_retention: Millis | None = None
    idempotency_retention: Millis | None = None
    workflow_completion_retention: Millis | None = None
    enable_lazy_state: bool | None = None
    ingress_private: bool | None = None
    retry_policy_initial_interval: Millis | None = None
    retry_policy_max_interval: Millis | None = None
    retry_policy_max_attempts: Count | None = None
    retry_policy_exponentiation_factor: float | None = None
    retry_policy_on_max_attempts: Literal["PAUSE", "KILL"] | None = None


class Service(msgspec.Struct, rename="camel", omit_defaults=True):
    name: Annotated[str, msgspec.Meta(pattern=SERVICE_NAME_PATTERN)]
    ty: Literal["VIRTUAL_OBJECT", "SERVICE", "WORKFLOW"]
    handlers: list[Handler]
    documentation: str | None = None
    metadata: dict[str, str] | None = None
    inactivity_timeout: Millis | None = None
    abort_timeout: Millis | None = None
    journal_retention: Millis | None = None
    idempotency_retention: Millis | None = None
    enable_lazy_state: bool | None = None
    ingress_private: bool | None = None
    retry_policy_initial_interval: Millis | None = None
    retry_policy_max_interval: Millis | None = None
    retry_policy_max_attempts: Count | None = None
    retry_policy_exponentiation_factor: float | None = None
    retry_policy_on_max_attempts: Literal["PAUSE", "KILL"] | None = None


class Endpoint(msgspec.Struct, rename="camel", omit_defaults=True):
    min_protocol_version: ProtocolVersion
    max_protocol_version: ProtocolVersion
    services: list[Service]
    protocol_mode: Literal["BIDI_STREAM", "REQUEST_RESPONSE"] | None = None
    lambda_compression: Literal["zstd"] | None = None


MANIFEST_CONTENT_TYPES: dict[str, int] = {
    f"application/vnd.restate.endpointmanifest.v{v}+json": v for v in (1, 2, 3, 4)
}
# what the runtime offers in ``accept`` (exact text of the real server)
MANIFEST_ACCEPT = ", ".join(MANIFEST_CONTENT_TYPES)

_DECODER = msgspec.json.Decoder(Endpoint)


def decode_manifest(body: bytes) -> Endpoint:
    """Decode a manifest body; raises ``msgspec.ValidationError``/``DecodeError``."""
    return _DECODER.decode(body)


def encode_manifest(endpoint: Endpoint) -> bytes:
    return msgspec.json.encode(endpoint)
