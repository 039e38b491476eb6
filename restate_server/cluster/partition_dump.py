"""A partition's state as one blob: dumped from a store snapshot, restored into a store.

A dump holds every key of the partition's ranges (``storage.partition_ranges``) as
they were at one instant, which includes the log sequence that state was written at
(the partition's ``log_sequence`` variable). Restoring replaces the partition's ranges
in a store with the dump in one atomic batch, and rebuilds the partition's share of
the in-memory active-invocation index from the restored statuses; the other partitions
of the store are untouched.
"""

from __future__ import annotations

import zlib

import msgspec

from restate_server.cluster.log_committer import log_sequence_key
from restate_server.partition.table import PartitionTable
from restate_server.storage import keys
from restate_server.storage.active_index import ActiveIndex
from restate_server.storage.db import Store
from restate_server.storage.partition_ranges import partition_key_ranges, tag_range
from restate_server.storage.snapshot import StoreSnapshot
from restate_server.storage.transaction import Writes


class PartitionDump(msgspec.Struct, array_like=True):
    partition_id: int
    # the last log record the state includes
    sequence: int
    pairs: list[tuple[bytes, bytes]]


class DumpMismatch(Exception):
    """A dump that is not the partition's, or does not hold its log sequence."""


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(PartitionDump)


def dump_partition(
    taken: StoreSnapshot, table: PartitionTable, partition_id: int, sequence: int
) -> bytes:
    """The partition as ``taken`` shows it (a snapshot opened with the partition's
    ``partition_key_ranges``), compressed. Reads RocksDB: call it off the event loop."""
    ranges = partition_key_ranges(table, partition_id)
    pairs = [pair for start, end in ranges for pair in taken.items(start, end)]
    if _sequence_of(dict(pairs), partition_id) != sequence:
        raise DumpMismatch(f"partition {partition_id}: the snapshot is not at record {sequence}")
    return zlib.compress(_encoder.encode(PartitionDump(partition_id, sequence, pairs)), 1)


def decode_dump(blob: bytes) -> PartitionDump:
    return _decoder.decode(zlib.decompress(blob))


def restore_partition(store: Store, table: PartitionTable, dump: PartitionDump) -> None:
    """Replace the partition's data in ``store`` with ``dump``, atomically. Reads and
    writes RocksDB: call it off the event loop, before the partition's processor runs."""
    partition_id = dump.partition_id
    restored = dict(dump.pairs)
    if _sequence_of(restored, partition_id) != dump.sequence:
        raise DumpMismatch(f"partition {partition_id}: the dump is not at {dump.sequence}")
    writes: Writes = {}
    for start, end in partition_key_ranges(table, partition_id):
        for key, _ in store.scan_range(start, end):
            writes[key] = None
    # the partition's share of the in-memory active index: dropped, then made anew
    tag = keys.ACTIVE_INVOCATION
    for key, _ in store.active.scan(*tag_range(tag, table, partition_id)):
        writes[key] = None
    writes.update(restored)
    statuses = ((k, v) for k, v in dump.pairs if k[:1] == keys.INVOCATION_STATUS)
    for key, status in ActiveIndex.of_statuses(statuses).scan(tag, keys.prefix_end(tag)):
        writes[key] = status
    store.write(writes)


def _sequence_of(pairs: dict[bytes, bytes], partition_id: int) -> int | None:
    raw = pairs.get(log_sequence_key(partition_id))
    return keys.decode_u64(raw) if raw else None
