"""A partition's dump and its restore into another store (no engine): the partition's
ranges are replaced exactly, the other partitions stay as they were, and the in-memory
active-invocation index follows the restored statuses."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from restate_server.cluster.log_committer import log_sequence_key
from restate_server.cluster.partition_dump import (
    DumpMismatch,
    decode_dump,
    dump_partition,
    restore_partition,
)
from restate_server.partition.table import PartitionTable
from restate_server.storage import keys
from restate_server.storage.db import Store
from restate_server.storage.partition_ranges import partition_key_ranges

TABLE = PartitionTable(4)


def _pk(partition_id: int, offset: int = 7) -> int:
    return TABLE.range_of(partition_id)[0] + offset


def _invocation(partition_id: int, n: int) -> bytes:
    return _pk(partition_id).to_bytes(8, "big") + n.to_bytes(16, "big")


def _status(status: str) -> bytes:
    return msgspec.msgpack.encode([status, "more fields"])


def _partition(
    store: Store, partition_id: int, sequence: int, running: list[int], done: list[int]
) -> None:
    writes: dict[bytes, bytes | None] = {
        keys.state_entry(_pk(partition_id), "Counter", "k", b"count"): b"%d" % sequence,
        keys.timer(partition_id, 1000, 1): b"timer",
        log_sequence_key(partition_id): keys.encode_u64(sequence),
    }
    for n in running:
        invocation = _invocation(partition_id, n)
        writes[keys.invocation_status(invocation)] = _status("invoked")
        writes[keys.active_invocation(invocation)] = b"invoked"
        writes[keys.journal_entry(invocation, 0)] = b"entry"
    for n in done:
        writes[keys.invocation_status(_invocation(partition_id, n))] = _status("completed")
    store.write(writes)


def _contents(store: Store, partition_id: int) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for start, end in partition_key_ranges(TABLE, partition_id):
        found.update(store.scan_range(start, end))
    return found


def _active(store: Store) -> dict[bytes, bytes]:
    tag = keys.ACTIVE_INVOCATION
    return dict(store.active.scan(tag, keys.prefix_end(tag)))


def test_restore_replaces_one_partition_and_its_active_entries(tmp_path: Path) -> None:
    source = Store(str(tmp_path / "source"), sync_writes=False)
    _partition(source, 2, sequence=40, running=[1, 2], done=[3])
    _partition(source, 3, sequence=41, running=[9], done=[])  # the last partition too
    taken = source.snapshot(partition_key_ranges(TABLE, 2))
    blob = dump_partition(taken, TABLE, 2, 40)
    taken.release()
    _partition(source, 2, sequence=45, running=[4], done=[1, 2, 3])  # later: not in it

    target = Store(str(tmp_path / "target"), sync_writes=False)
    _partition(target, 1, sequence=7, running=[5], done=[])  # another partition
    _partition(target, 2, sequence=3, running=[8], done=[])  # stale, to be replaced
    before_other = _contents(target, 1)
    restore_partition(target, TABLE, decode_dump(blob))

    restored = _contents(target, 2)
    assert keys.decode_u64(restored[log_sequence_key(2)]) == 40
    assert keys.invocation_status(_invocation(2, 8)) not in restored  # stale data gone
    assert restored[keys.state_entry(_pk(2), "Counter", "k", b"count")] == b"40"
    assert _contents(target, 1) == before_other
    assert _active(target) == {
        keys.active_invocation(_invocation(1, 5)): b"invoked",
        keys.active_invocation(_invocation(2, 1)): b"invoked",
        keys.active_invocation(_invocation(2, 2)): b"invoked",
    }
    # the same again from the last partition, whose ranges run to the tables' ends
    taken = source.snapshot(partition_key_ranges(TABLE, 3))
    restore_partition(target, TABLE, decode_dump(dump_partition(taken, TABLE, 3, 41)))
    taken.release()
    assert keys.active_invocation(_invocation(3, 9)) in _active(target)
    source.close()
    target.close()


def test_a_snapshot_not_at_the_named_record_is_refused(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"), sync_writes=False)
    _partition(store, 1, sequence=10, running=[], done=[1])
    taken = store.snapshot(partition_key_ranges(TABLE, 1))
    with pytest.raises(DumpMismatch):
        dump_partition(taken, TABLE, 1, 11)
    taken.release()
    store.close()
