"""``sys_keyed_service_status``: which invocation holds each locked virtual object key.

Workflow keys are left out: the real server does not keep a lock record for them (a
workflow's one ``run`` is known by its invocation id), so it shows none.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from restate_server.query.columns import BatchBuilder, Makers, id_texts
from restate_server.query.partition_scan import ScanRequest, chunks
from restate_server.query.read_view import ReadView
from restate_server.query.schemas import SCHEMAS
from restate_server.query.tables.keyed import parse_instance_key, scan_instances
from restate_server.storage import keys

SCHEMA = SCHEMAS["sys_keyed_service_status"]


def scan(partition_id: int, request: ScanRequest, view: ReadView) -> Iterator[pa.RecordBatch]:
    builder = BatchBuilder(SCHEMA, request.columns)
    workflows = {s.name for s in view.services if s.ty == "Workflow"}
    items = (
        item
        for item in scan_instances(keys.KEY_LOCK, request.hints, view, partition_id)
        if not workflows or parse_instance_key(item[0]).service not in workflows
    )
    for chunk in chunks(items, request.batch_rows):
        yield builder.build(len(chunk), _makers(chunk))


def _makers(chunk: list[tuple[bytes, bytes]]) -> Makers:
    parsed = [parse_instance_key(key) for key, _ in chunk]
    # a lock record starts with the holder's invocation id
    holders = [value for _, value in chunk]
    return {
        "partition_key": lambda: [p.partition_key for p in parsed],
        "service_name": lambda: [p.service for p in parsed],
        "service_key": lambda: [p.key for p in parsed],
        "invocation_id": lambda: id_texts(holders, 0),
    }
