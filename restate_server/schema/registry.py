"""The schema registry: deployments, the service revisions they serve, and changes to them.

Every deployment keeps the revisions of the services it serves (so an old deployment
still describes what its in-flight invocations were started against); the *active*
revision of a service is the highest one across deployments. All changes are computed
on a new snapshot, persisted through the ``MetadataStore`` and only then made visible
(dry runs compute the same snapshot and drop it). Reads are plain dict lookups.

Rules follow the real server's schema updater: registering a URI that is already
registered changes nothing unless ``force``; ``force`` overwrites the deployment in
place (same id) and bumps every revision; a service may not change its type across
revisions unless ``breaking`` (or ``force``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Literal, Protocol
from urllib.parse import urlsplit

import msgspec

from restate_server.schema.discovery import DiscoveryResult
from restate_server.schema.errors import NotFoundError, SchemaError
from restate_server.schema.ids import new_deployment_id
from restate_server.schema.model import (
    Deployment,
    HandlerSchema,
    SchemaSnapshot,
    ServiceSchema,
    decode_snapshot,
    encode_snapshot,
)
from restate_server.schema.resolve import InvocationTargetInfo, SchemaDefaults, resolve_target
from restate_server.schema.validation import (
    build_service,
    service_type_of,
    validate_service_name,
)

log = logging.getLogger(__name__)

RegistrationOutcome = Literal["Created", "Unchanged", "Overwritten"]
Listener = Callable[["SchemaRegistry"], None]


class MetadataStore(Protocol):
    """Durable home of the registry (one record). ``save_schema`` must be synced."""

    def load_schema(self) -> bytes | None: ...

    def save_schema(self, data: bytes) -> None: ...


class InMemoryMetadataStore:
    """A ``MetadataStore`` for tests and throw-away servers."""

    def __init__(self, data: bytes | None = None) -> None:
        self.data = data
        self.saves = 0

    def load_schema(self) -> bytes | None:
        return self.data

    def save_schema(self, data: bytes) -> None:
        self.data = data
        self.saves += 1


class RegistrationResult(msgspec.Struct, kw_only=True):
    outcome: RegistrationOutcome
    deployment: Deployment
    # the revisions this deployment serves (after the change)
    services: list[ServiceSchema]


class ServicePatch(msgspec.Struct, kw_only=True):
    """``PATCH /services/{name}``: None leaves a setting as it is."""

    public: bool | None = None
    idempotency_retention_ms: int | None = None
    journal_retention_ms: int | None = None
    workflow_completion_retention_ms: int | None = None
    inactivity_timeout_ms: int | None = None
    abort_timeout_ms: int | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, field) is None for field in self.__struct_fields__)


def _address_key(uri: str) -> tuple[str, str]:
    """Two URIs name the same deployment when authority and path are equal (not scheme)."""
    parts = urlsplit(uri)
    return parts.netloc.lower(), parts.path or "/"


def _active_index(snapshot: SchemaSnapshot) -> dict[str, ServiceSchema]:
    active: dict[str, ServiceSchema] = {}
    created = {dp_id: dp.created_at_ms for dp_id, dp in snapshot.deployments.items()}
    for dp_id, services in snapshot.services.items():
        for name, service in services.items():
            current = active.get(name)
            if (
                current is None
                or service.revision > current.revision
                or (
                    service.revision == current.revision
                    and created.get(dp_id, 0) > created.get(current.deployment_id, 0)
                )
            ):
                active[name] = service
    return active


class SchemaRegistry:
    def __init__(self, store: MetadataStore, defaults: SchemaDefaults | None = None) -> None:
        self._store = store
        self.defaults = defaults if defaults is not None else SchemaDefaults()
        raw = store.load_schema()
        self._snapshot = decode_snapshot(raw) if raw else SchemaSnapshot()
        self._active = _active_index(self._snapshot)
        self._listeners: list[Listener] = []
        # resolved settings of the active revisions; every invocation asks for them
        self._resolved: dict[tuple[str, str], InvocationTargetInfo | None] = {}

    # ------------------------------------------------------------------ reads

    @property
    def version(self) -> int:
        """Bumped by every committed change."""
        return self._snapshot.version

    def get_service(self, name: str) -> ServiceSchema | None:
        """The active (latest) revision of a service."""
        return self._active.get(name)

    def get_handler(self, service: str, handler: str) -> HandlerSchema | None:
        schema = self._active.get(service)
        return None if schema is None else schema.handlers.get(handler)

    def get_deployment(self, deployment_id: str) -> Deployment | None:
        return self._snapshot.deployments.get(deployment_id)

    def get_service_revision(self, deployment_id: str, name: str) -> ServiceSchema | None:
        """The revision of ``name`` that a given deployment serves."""
        return self._snapshot.services.get(deployment_id, {}).get(name)

    def list_services(self) -> list[ServiceSchema]:
        return [self._active[name] for name in sorted(self._active)]

    def list_deployments(self) -> list[Deployment]:
        return sorted(self._snapshot.deployments.values(), key=lambda d: (d.created_at_ms, d.id))

    def deployment_services(self, deployment_id: str) -> list[ServiceSchema]:
        return list(self._snapshot.services.get(deployment_id, {}).values())

    def latest_deployment_for(self, service: str) -> Deployment | None:
        schema = self._active.get(service)
        return None if schema is None else self._snapshot.deployments.get(schema.deployment_id)

    def find_deployment(self, uri: str) -> Deployment | None:
        """The newest deployment registered under the same address as ``uri``."""
        key = _address_key(uri)
        matches = [d for d in self._snapshot.deployments.values() if _address_key(d.uri) == key]
        return max(matches, key=lambda d: d.created_at_ms, default=None)

    def resolve_invocation_target(
        self, service: str, handler: str, deployment_id: str | None = None
    ) -> InvocationTargetInfo | None:
        """Effective settings of ``service/handler``: of the active revision, or of the
        revision a given (pinned) deployment serves."""
        if deployment_id is None:
            cache_key = (service, handler)
            if cache_key not in self._resolved:
                self._resolved[cache_key] = self._resolve(self._active.get(service), handler)
            return self._resolved[cache_key]
        return self._resolve(self.get_service_revision(deployment_id, service), handler)

    def _resolve(self, schema: ServiceSchema | None, handler: str) -> InvocationTargetInfo | None:
        if schema is None:
            return None
        handler_schema = schema.handlers.get(handler)
        if handler_schema is None:
            return None
        deployment = self._snapshot.deployments.get(schema.deployment_id)
        return resolve_target(self.defaults, schema, handler_schema, deployment)

    # ------------------------------------------------------------------ listeners

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(registry)`` after every committed change; returns an unsubscribe."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    # ------------------------------------------------------------------ changes

    def apply_registration(
        self,
        uri: str,
        discovery: DiscoveryResult,
        *,
        use_http_11: bool = False,
        additional_headers: dict[str, str] | None = None,
        metadata: dict[str, str] | None = None,
        force: bool = False,
        breaking: bool = False,
        dry_run: bool = False,
        now_ms: int | None = None,
    ) -> RegistrationResult:
        """Add (or with ``force`` overwrite) the deployment at ``uri`` from its discovery."""
        for service in discovery.services:
            validate_service_name(service.name)
        existing = self.find_deployment(uri)
        if existing is not None and not force:
            return RegistrationResult(
                outcome="Unchanged",
                deployment=existing,
                services=self.deployment_services(existing.id),
            )
        outcome: RegistrationOutcome = "Overwritten" if existing is not None else "Created"
        deployment_id = existing.id if existing is not None else new_deployment_id()
        allow_breaking = force or breaking

        computed: dict[str, ServiceSchema] = {}
        for proposed in discovery.services:
            previous = self._active.get(proposed.name)
            new_ty = service_type_of(proposed)
            if previous is not None and previous.ty != new_ty:
                if not allow_breaking:
                    raise SchemaError(
                        f"detected a new service revision for '{proposed.name}' changing the "
                        "service type from previous revision. Service type cannot be changed "
                        "across revisions.",
                        code="META0006",
                        status=409,
                    )
                if not dry_run:
                    log.warning(
                        "service %s changes type %s -> %s with deployment %s",
                        proposed.name,
                        previous.ty,
                        new_ty,
                        deployment_id,
                    )
            revision = previous.revision + 1 if previous is not None else 1
            computed[proposed.name] = build_service(
                proposed, revision=revision, deployment_id=deployment_id
            )

        deployment = Deployment(
            id=deployment_id,
            uri=uri,
            protocol_type=discovery.protocol_type,  # type: ignore[arg-type]
            http_version=discovery.http_version,  # type: ignore[arg-type]
            use_http_11=use_http_11,
            additional_headers=dict(additional_headers or {}),
            created_at_ms=now_ms if now_ms is not None else int(time.time() * 1000),
            min_protocol_version=discovery.min_protocol_version,
            max_protocol_version=discovery.max_protocol_version,
            sdk_version=discovery.sdk_version,
            metadata=dict(metadata or {}),
            services={name: s.revision for name, s in computed.items()},
        )
        if not dry_run:
            self._commit(self._with_deployment(deployment, computed))
        return RegistrationResult(
            outcome=outcome, deployment=deployment, services=list(computed.values())
        )

    def update_deployment(
        self,
        deployment_id: str,
        discovery: DiscoveryResult,
        *,
        uri: str,
        use_http_11: bool,
        additional_headers: dict[str, str],
        overwrite: bool = False,
        dry_run: bool = False,
    ) -> RegistrationResult:
        """``PATCH /deployments/{id}``: new address/headers for the same deployment id.

        Without ``overwrite`` the services stay as they are; with it they are rebuilt
        from the new manifest, keeping their revision numbers.
        """
        existing = self._snapshot.deployments.get(deployment_id)
        if existing is None:
            raise NotFoundError(deployment_id)
        if (existing.min_protocol_version, existing.max_protocol_version) != (
            discovery.min_protocol_version,
            discovery.max_protocol_version,
        ):
            raise SchemaError(
                "an update deployment operation must provide an endpoint with the same services "
                "and handlers. The update tried to change the supported protocol versions from "
                f"{existing.min_protocol_version}..={existing.max_protocol_version} to "
                f"{discovery.min_protocol_version}..={discovery.max_protocol_version}",
                code="META0016",
            )
        current = self._snapshot.services.get(deployment_id, {})
        if overwrite:
            for service in discovery.services:
                validate_service_name(service.name)
            services = {
                proposed.name: build_service(
                    proposed,
                    revision=current[proposed.name].revision if proposed.name in current else 1,
                    deployment_id=deployment_id,
                )
                for proposed in discovery.services
            }
        else:
            services = dict(current)
        deployment = msgspec.structs.replace(
            existing,
            uri=uri,
            protocol_type=discovery.protocol_type,
            http_version=discovery.http_version,
            use_http_11=use_http_11,
            additional_headers=dict(additional_headers),
            sdk_version=discovery.sdk_version,
            services={name: s.revision for name, s in services.items()},
        )
        if not dry_run:
            self._commit(self._with_deployment(deployment, services))
        return RegistrationResult(
            outcome="Overwritten", deployment=deployment, services=list(services.values())
        )

    def remove_deployment(self, deployment_id: str) -> bool:
        """Forget a deployment; its services fall back to revisions other deployments serve."""
        if deployment_id not in self._snapshot.deployments:
            return False
        deployments = dict(self._snapshot.deployments)
        services = dict(self._snapshot.services)
        del deployments[deployment_id]
        services.pop(deployment_id, None)
        self._commit(self._next_snapshot(deployments, services))
        return True

    def modify_service(self, name: str, patch: ServicePatch) -> ServiceSchema:
        """Change settings of the active revision in place (no new revision)."""
        service = self._active.get(name)
        if service is None:
            raise NotFoundError(f"service with name '{name}'")
        if patch.workflow_completion_retention_ms is not None and service.ty != "Workflow":
            raise SchemaError(
                f"modifying retention time for service type {service.ty} is unsupported"
            )
        if patch.is_empty():
            return service
        changes = {
            field: getattr(patch, field)
            for field in patch.__struct_fields__
            if getattr(patch, field) is not None
        }
        updated = msgspec.structs.replace(service, **changes)
        dp_id = service.deployment_id
        deployment_services = dict(self._snapshot.services.get(dp_id, {}))
        deployment_services[name] = updated
        services = dict(self._snapshot.services)
        services[dp_id] = deployment_services
        self._commit(self._next_snapshot(dict(self._snapshot.deployments), services))
        return updated

    # ------------------------------------------------------------------ internals

    def _with_deployment(
        self, deployment: Deployment, services: dict[str, ServiceSchema]
    ) -> SchemaSnapshot:
        deployments = dict(self._snapshot.deployments)
        all_services = dict(self._snapshot.services)
        deployments[deployment.id] = deployment
        all_services[deployment.id] = services
        return self._next_snapshot(deployments, all_services)

    def _next_snapshot(
        self,
        deployments: dict[str, Deployment],
        services: dict[str, dict[str, ServiceSchema]],
    ) -> SchemaSnapshot:
        return SchemaSnapshot(
            version=self._snapshot.version + 1, deployments=deployments, services=services
        )

    def encoded(self) -> bytes:
        """The committed schema, as stored (what ``adopt`` takes)."""
        return encode_snapshot(self._snapshot)

    def adopt(self, raw: bytes) -> bool:
        """Take a schema committed by another process's registry (a worker takes the
        supervisor's). An older or equal version is ignored; True if it was newer."""
        snapshot = decode_snapshot(raw)
        if snapshot.version <= self._snapshot.version and self._snapshot.version:
            return False
        self._snapshot = snapshot
        self._active = _active_index(snapshot)
        self._resolved = {}
        self._notify(self._listeners)
        return True

    def _commit(self, snapshot: SchemaSnapshot) -> None:
        # durable first, visible second: a failed save leaves the registry unchanged
        self._store.save_schema(encode_snapshot(snapshot))
        self._snapshot = snapshot
        self._active = _active_index(snapshot)
        self._resolved = {}
        self._notify(self._listeners)

    def _notify(self, listeners: Iterable[Listener]) -> None:
        for listener in list(listeners):
            try:
                listener(self)
            except Exception:
                log.exception("schema change listener failed")
