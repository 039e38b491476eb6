"""``state``: the K/V state of virtual objects and workflows, one row per state key."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from restate_server.query.columns import BatchBuilder, Makers, utf8_or_none
from restate_server.query.partition_scan import ScanRequest, chunks
from restate_server.query.read_view import ReadView
from restate_server.query.schemas import SCHEMAS
from restate_server.query.tables.keyed import parse_instance_key, scan_instances
from restate_server.storage import keys

SCHEMA = SCHEMAS["state"]


def scan(partition_id: int, request: ScanRequest, view: ReadView) -> Iterator[pa.RecordBatch]:
    builder = BatchBuilder(SCHEMA, request.columns)
    items = scan_instances(keys.STATE, request.hints, view, partition_id)
    for chunk in chunks(items, request.batch_rows):
        yield builder.build(len(chunk), _makers(chunk))


def _makers(chunk: list[tuple[bytes, bytes]]) -> Makers:
    parsed = [parse_instance_key(key) for key, _ in chunk]
    state_keys = [key[p.rest :] for (key, _), p in zip(chunk, parsed, strict=True)]
    values = [value for _, value in chunk]
    return {
        "partition_key": lambda: [p.partition_key for p in parsed],
        "service_name": lambda: [p.service for p in parsed],
        "service_key": lambda: [p.key for p in parsed],
        "key": lambda: [utf8_or_none(k) for k in state_keys],
        "key_length": lambda: [len(k) for k in state_keys],
        "value_utf8": lambda: [utf8_or_none(v) for v in values],
        "value": lambda: values,
        "value_length": lambda: [len(v) for v in values],
    }
