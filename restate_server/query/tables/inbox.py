"""``sys_inbox``: invocations queued behind the invocation holding their key's lock.

As in the real server, ``created_at`` stays null (the inbox entry does not carry it).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pyarrow as pa

from restate_server.query.columns import BatchBuilder, Makers, id_texts
from restate_server.query.partition_scan import ScanRequest, chunks
from restate_server.query.read_view import ReadView
from restate_server.query.schemas import SCHEMAS
from restate_server.query.tables.keyed import parse_instance_key, scan_instances
from restate_server.storage import keys

SCHEMA = SCHEMAS["sys_inbox"]
_U64 = struct.Struct(">Q")
INVOCATION_ID_SIZE = 24


def scan(partition_id: int, request: ScanRequest, view: ReadView) -> Iterator[pa.RecordBatch]:
    builder = BatchBuilder(SCHEMA, request.columns)
    # an inbox entry is a queued invocation (its id) or a queued state mutation (a
    # record); only invocations are rows here
    items = (
        item
        for item in scan_instances(keys.INBOX, request.hints, view, partition_id)
        if len(item[1]) == INVOCATION_ID_SIZE
    )
    for chunk in chunks(items, request.batch_rows):
        yield builder.build(len(chunk), _makers(chunk))


def _makers(chunk: list[tuple[bytes, bytes]]) -> Makers:
    parsed = [parse_instance_key(key) for key, _ in chunk]
    ids = [value for _, value in chunk]
    return {
        "partition_key": lambda: [p.partition_key for p in parsed],
        "service_name": lambda: [p.service for p in parsed],
        "service_key": lambda: [p.key for p in parsed],
        "id": lambda: id_texts(ids, 0),
        "sequence_number": lambda: [
            _U64.unpack_from(key, p.rest)[0] for (key, _), p in zip(chunk, parsed, strict=True)
        ],
    }
