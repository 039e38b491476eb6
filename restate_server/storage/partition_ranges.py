"""The RocksDB key ranges that hold one partition's data, across every table.

A partition is the unit of data that moves between stores, so moving one means
copying and deleting exactly these ranges. Two key layouts exist (see ``keys``):

- per-invocation and per-key tables start with tag + 8-byte big-endian partition
  key (an invocation id begins with its partition key): the partition owns
  [tag + range start, tag + range end) of its partition-key range;
- per-partition tables start with tag + u16 partition id: the partition owns that
  one prefix.

Not here: metadata (``M``, per store, never moved) and the active index (``A``,
never in RocksDB; rebuilt from the statuses when a store opens).
"""

from __future__ import annotations

import struct

from restate_server.partition.table import KEY_SPACE, PartitionTable
from restate_server.storage import keys

# keyed by tag + 8-byte big-endian partition key
PARTITION_KEY_TABLES: tuple[bytes, ...] = (
    keys.INVOCATION_STATUS,
    keys.JOURNAL,
    keys.STATE,
    keys.KEY_LOCK,
    keys.INBOX,
    keys.PROMISES,
)
# keyed by tag + u16 partition id
PARTITION_ID_TABLES: tuple[bytes, ...] = (keys.TIMERS, keys.OUTBOX, keys.DEDUP, keys.FSM)
# tables that belong to no partition
UNPARTITIONED_TABLES: tuple[bytes, ...] = (keys.METADATA, keys.ACTIVE_INVOCATION)

_U16 = struct.Struct(">H")
_U64 = struct.Struct(">Q")


def tag_range(tag: bytes, table: PartitionTable, partition_id: int) -> tuple[bytes, bytes]:
    """The [start, end) keys of a table keyed by ``tag`` + 8-byte big-endian partition
    key (the active-invocation index too) that belong to ``partition_id``."""
    start, end = table.range_of(partition_id)
    # the last partition's end (2**64) has no 8-byte form: it runs to the tag's end
    high = tag + _U64.pack(end) if end < KEY_SPACE else keys.prefix_end(tag)
    return tag + _U64.pack(start), high


def partition_key_ranges(table: PartitionTable, partition_id: int) -> list[tuple[bytes, bytes]]:
    """Every [start, end) key range holding data of ``partition_id``, sorted by start."""
    if not 0 <= partition_id < table.count:
        raise ValueError(f"partition {partition_id} is not in a table of {table.count}")
    ranges = [tag_range(tag, table, partition_id) for tag in PARTITION_KEY_TABLES]
    for tag in PARTITION_ID_TABLES:
        prefix = tag + _U16.pack(partition_id)
        ranges.append((prefix, keys.prefix_end(prefix)))
    ranges.sort()
    return ranges
