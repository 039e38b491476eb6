"""The per-partition scan: (partition, table, columns, hints, read view) -> record batches.

This is the unit a worker process will serve once partitions live elsewhere: the
request is a plain msgspec struct, the answer a stream of Arrow batches (which travel
as Arrow IPC). A scan may return more rows than the hints allow, never fewer; the
query engine applies every predicate exactly afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import msgspec
import pyarrow as pa

from restate_server.partition.table import PartitionTable
from restate_server.query.hints import ScanHints
from restate_server.query.read_view import ReadView
from restate_server.storage.partition_ranges import tag_range


class ScanRequest(msgspec.Struct, frozen=True):
    table: str
    # the columns to produce, in table order (the batches have exactly these)
    columns: tuple[str, ...]
    hints: ScanHints
    # rows per batch: small batches give the GIL back often and bound memory
    batch_rows: int = 1024


# scan(partition id, request, view): a partitioned table's rows in that partition
PartitionScan = Callable[[int, ScanRequest, ReadView], Iterator[pa.RecordBatch]]
# the key ranges a partition's scan reads for these hints (opened with the snapshot)
PartitionRanges = Callable[[ScanHints, PartitionTable, int], list[tuple[bytes, bytes]]]


def partition_range(
    tag: bytes, partitions: PartitionTable, partition_id: int
) -> tuple[bytes, bytes]:
    """The keys of table ``tag`` (keys start with tag + big-endian partition key) owned by
    ``partition_id``: [start, end)."""
    return tag_range(tag, partitions, partition_id)


def in_partition(partition_key: int, partitions: PartitionTable, partition_id: int) -> bool:
    return partitions.partition_of(partition_key) == partition_id


def chunks(items: Iterator[tuple[bytes, bytes]], size: int) -> Iterator[list[tuple[bytes, bytes]]]:
    chunk: list[tuple[bytes, bytes]] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
