"""``sys_promise``: the durable promises of workflow instances."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from restate_server.query.columns import BatchBuilder, Makers, utf8_or_none
from restate_server.query.partition_scan import ScanRequest, chunks
from restate_server.query.read_view import ReadView
from restate_server.query.schemas import SCHEMAS
from restate_server.query.tables.keyed import parse_instance_key, scan_instances
from restate_server.storage import keys
from restate_server.storage.records import PromiseRecord, decode_promise

SCHEMA = SCHEMAS["sys_promise"]


def scan(partition_id: int, request: ScanRequest, view: ReadView) -> Iterator[pa.RecordBatch]:
    builder = BatchBuilder(SCHEMA, request.columns)
    items = scan_instances(keys.PROMISES, request.hints, view, partition_id)
    for chunk in chunks(items, request.batch_rows):
        yield builder.build(len(chunk), _makers(chunk))


def _success(record: PromiseRecord) -> bytes | None:
    outcome = record.outcome
    if not record.completed or outcome is None or outcome.failure is not None:
        return None
    return outcome.value or b""


def _failure(record: PromiseRecord) -> str | None:
    outcome = record.outcome
    if not record.completed or outcome is None or outcome.failure is None:
        return None
    return f"[{outcome.failure.code}] {outcome.failure.message}"


def _makers(chunk: list[tuple[bytes, bytes]]) -> Makers:
    parsed = [parse_instance_key(key) for key, _ in chunk]
    records = [decode_promise(value) for _, value in chunk]
    values = [_success(record) for record in records]
    return {
        "partition_key": lambda: [p.partition_key for p in parsed],
        "service_name": lambda: [p.service for p in parsed],
        "service_key": lambda: [p.key for p in parsed],
        "key": lambda: [key[p.rest :].decode() for (key, _), p in zip(chunk, parsed, strict=True)],
        "completed": lambda: [record.completed for record in records],
        "completion_success_value": lambda: values,
        "completion_success_value_utf8": lambda: [
            None if value is None else utf8_or_none(value) for value in values
        ],
        "completion_failure": lambda: [_failure(record) for record in records],
    }
