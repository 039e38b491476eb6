"""Schema registry: deployments, services, handlers, discovery of SDK endpoints."""

from restate_server.schema.discovery import DiscoveryResult, default_http_get, discover
from restate_server.schema.errors import DiscoveryError, NotFoundError, SchemaError
from restate_server.schema.model import Deployment, HandlerSchema, ServiceSchema
from restate_server.schema.registry import (
    InMemoryMetadataStore,
    MetadataStore,
    RegistrationResult,
    SchemaRegistry,
    ServicePatch,
)
from restate_server.schema.resolve import InvocationTargetInfo, SchemaDefaults

__all__ = [
    "Deployment",
    "DiscoveryError",
    "DiscoveryResult",
    "HandlerSchema",
    "InMemoryMetadataStore",
    "InvocationTargetInfo",
    "MetadataStore",
    "NotFoundError",
    "RegistrationResult",
    "SchemaDefaults",
    "SchemaError",
    "SchemaRegistry",
    "ServicePatch",
    "ServiceSchema",
    "default_http_get",
    "discover",
]
