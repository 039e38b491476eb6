"""``sys_journal``: every invocation's journal, one row per entry (journal format v2)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from restate_server.partition.table import PartitionTable
from restate_server.protocol.errors import InvalidIdError
from restate_server.protocol.ids import InvocationId
from restate_server.query.columns import BatchBuilder, Makers, id_texts, partition_keys
from restate_server.query.entry_json import command_name, decode_entry, entry_json
from restate_server.query.hints import ScanHints
from restate_server.query.in_flight import entry_type_name
from restate_server.query.partition_scan import ScanRequest, chunks, in_partition, partition_range
from restate_server.query.read_view import ReadView
from restate_server.query.schemas import SCHEMAS
from restate_server.storage import keys
from restate_server.storage.keys import prefix_end
from restate_server.storage.records import decode_journal_entry

SCHEMA = SCHEMAS["sys_journal"]
_ID_OFFSET = 1  # journal keys: tag + 24 id bytes + u32 index
# journal format version of protocol >= v4 entries
_VERSION = 2
# columns that need the entry decoded
_DECODED = frozenset({"name", "entry_json"})


def journal_ranges(
    hints: ScanHints, partitions: PartitionTable, partition_id: int
) -> list[tuple[bytes, bytes]]:
    """The journal key ranges a scan of the partition reads: whole journals of the hinted
    invocations, or the partition's whole range."""
    texts = hints.values("id")
    if texts is None:
        return [partition_range(keys.JOURNAL, partitions, partition_id)]
    ids = []
    for text in texts:
        try:
            raw = InvocationId.from_str(text).to_bytes()
        except (InvalidIdError, AttributeError):
            continue
        if in_partition(int.from_bytes(raw[:8], "big"), partitions, partition_id):
            ids.append(raw)
    prefixes = [keys.journal_prefix(raw) for raw in sorted(set(ids))]
    return [(prefix, prefix_end(prefix)) for prefix in prefixes]


def scan(partition_id: int, request: ScanRequest, view: ReadView) -> Iterator[pa.RecordBatch]:
    builder = BatchBuilder(SCHEMA, request.columns)
    decode = not _DECODED.isdisjoint(request.columns)
    items = (
        item
        for start, end in journal_ranges(request.hints, view.partitions, partition_id)
        for item in view.snapshot.items(start, end)
    )
    for chunk in chunks(items, request.batch_rows):
        yield builder.build(len(chunk), _makers(chunk, decode))


def _makers(chunk: list[tuple[bytes, bytes]], decode: bool) -> Makers:
    journal_keys = [key for key, _ in chunk]
    entries = [decode_journal_entry(value) for _, value in chunk]
    messages: list[Any] = (
        [decode_entry(e.type_id, e.body) for e in entries] if decode else [None] * len(entries)
    )
    return {
        "partition_key": lambda: partition_keys(journal_keys, _ID_OFFSET),
        "id": lambda: id_texts(journal_keys, _ID_OFFSET),
        "index": lambda: [keys.journal_index_of(key) for key in journal_keys],
        "entry_type": lambda: [entry_type_name(e.type_id) for e in entries],
        "name": lambda: [
            command_name(e.type_id, m) for e, m in zip(entries, messages, strict=True)
        ],
        "raw": lambda: [e.body for e in entries],
        "raw_length": lambda: [len(e.body) for e in entries],
        "version": lambda: [_VERSION] * len(entries),
        "entry_json": lambda: [
            entry_json(e.type_id, m) for e, m in zip(entries, messages, strict=True)
        ],
        "appended_at": lambda: [e.appended_at for e in entries],
    }
