"""``sys_deployment`` and ``sys_service``: the schema registry (not partitioned)."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from restate_server.query.columns import BatchBuilder
from restate_server.query.partition_scan import ScanRequest
from restate_server.query.read_view import QueryView
from restate_server.query.schemas import SCHEMAS

_SERVICE_TY = {"Service": "service", "VirtualObject": "virtual_object", "Workflow": "workflow"}
_DEPLOYMENT_TY = "http"  # this server registers HTTP deployments only (no Lambda)


def scan_deployments(request: ScanRequest, view: QueryView) -> Iterator[pa.RecordBatch]:
    rows = view.deployments
    builder = BatchBuilder(SCHEMAS["sys_deployment"], request.columns)
    yield builder.build(
        len(rows),
        {
            "id": lambda: [d.id for d in rows],
            "ty": lambda: [_DEPLOYMENT_TY] * len(rows),
            "endpoint": lambda: [d.uri for d in rows],
            "created_at": lambda: [d.created_at_ms for d in rows],
            "min_service_protocol_version": lambda: [d.min_protocol_version for d in rows],
            "max_service_protocol_version": lambda: [d.max_protocol_version for d in rows],
            "services": lambda: [sorted(d.services) for d in rows],
        },
    )


def scan_services(request: ScanRequest, view: QueryView) -> Iterator[pa.RecordBatch]:
    rows = view.services
    builder = BatchBuilder(SCHEMAS["sys_service"], request.columns)
    yield builder.build(
        len(rows),
        {
            "name": lambda: [s.name for s in rows],
            "revision": lambda: [s.revision for s in rows],
            "public": lambda: [s.public for s in rows],
            "ty": lambda: [_SERVICE_TY.get(s.ty, s.ty) for s in rows],
            "deployment_id": lambda: [s.deployment_id for s in rows],
        },
    )
