"""Partition snapshots in JetStream: heads only move forward, chunks round-trip, the
log is purged below a stored snapshot, and a new node rebuilds from snapshot plus log."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from restate_server.cluster.catch_up import catch_up
from restate_server.cluster.engine import Engine
from restate_server.cluster.log_committer import LogCommitter, applied_sequence
from restate_server.cluster.partition_log import Fenced, PartitionLog
from restate_server.cluster.snapshots import (
    CHUNK_BYTES,
    SnapshotStore,
    Snapshotter,
    restore_latest,
)
from restate_server.partition.table import PartitionTable
from restate_server.storage import keys
from restate_server.storage.db import Store
from restate_server.storage.partition_ranges import partition_key_ranges

TABLE = PartitionTable(4)
PARTITION = 1


def _state(name: str) -> bytes:
    partition_key = TABLE.range_of(PARTITION)[0] + 5
    return keys.state_entry(partition_key, "Counter", "k", name.encode())


def _contents(store: Store) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for start, end in partition_key_ranges(TABLE, PARTITION):
        found.update(store.scan_range(start, end))
    return found


async def _first_record(engine: Engine) -> int:
    message = await engine.js.get_msg(
        engine.names.log_stream, seq=1, subject=engine.names.partition_subject(PARTITION), next=True
    )
    return message.seq or 0


async def test_heads_only_move_forward_and_chunks_round_trip(engine: Engine) -> None:
    await engine.ensure_layout(replicas=3, lease_ttl_s=3)
    snapshots = SnapshotStore(engine)
    assert await snapshots.latest(PARTITION) is None
    big = os.urandom(CHUNK_BYTES * 2 + 1000)  # three chunks
    assert await snapshots.save(PARTITION, epoch=2, sequence=50, blob=big)
    found = await snapshots.latest(PARTITION)
    assert found is not None and found[0].sequence == 50 and found[0].chunks == 3
    assert await snapshots.load(found[0]) == big
    # a deposed leader's late snapshot of an earlier record loses, and leaves no chunks
    assert not await snapshots.save(PARTITION, epoch=1, sequence=40, blob=b"old")
    again = await snapshots.latest(PARTITION)
    assert again is not None and again[0] == found[0]
    info = await engine.js.stream_info(
        engine.names.snapshots_stream, subjects_filter=engine.names.snapshot_subjects
    )
    subjects = set((info.state.subjects or {}).keys())
    assert subjects == {found[0].data_subject, engine.names.snapshot_head_subject(PARTITION)}
    # a newer one replaces it and removes its chunks
    assert await snapshots.save(PARTITION, epoch=2, sequence=60, blob=b"newer")
    newest = await snapshots.latest(PARTITION)
    assert newest is not None and await snapshots.load(newest[0]) == b"newer"
    info = await engine.js.stream_info(
        engine.names.snapshots_stream, subjects_filter=engine.names.snapshot_subjects
    )
    assert found[0].data_subject not in (info.state.subjects or {})


async def test_a_new_node_rebuilds_from_the_snapshot_and_the_log_after_it(
    engine: Engine, tmp_path: Path
) -> None:
    await engine.ensure_layout(replicas=3, lease_ttl_s=3)
    snapshots = SnapshotStore(engine)
    leader = Store(str(tmp_path / "leader"), sync_writes=False)
    partition_log = PartitionLog(engine, PARTITION, last_sequence=0, writer="a:1")
    snapshotter = Snapshotter(snapshots, leader, TABLE, PARTITION, epoch=1, every=5)
    fenced: list[Fenced] = []
    committer = LogCommitter(partition_log, leader, 1, fenced.append, snapshotter.written)
    for i in range(23):
        committer.submit({_state(f"n{i % 6}"): b"%d" % i}, lambda: None)
        await committer.wait_idle()  # one record each
        await asyncio.sleep(0)
    await snapshotter.wait_idle()  # the last snapshot is saved in the background
    await snapshotter.close()
    assert len(snapshotter.saved) >= 2 and not fenced
    last = snapshotter.saved[-1]
    # the log below the latest snapshot is gone; its own record stays for the fence
    assert await _first_record(engine) == last

    follower = Store(str(tmp_path / "follower"), sync_writes=False)
    assert await restore_latest(snapshots, follower, TABLE, PARTITION) == last
    assert applied_sequence(follower, PARTITION) == last
    tail = await PartitionLog.tail(engine, PARTITION)
    replayed = PartitionLog(engine, PARTITION, last_sequence=0, writer="b:2")
    await catch_up(replayed, follower, tail)
    assert _contents(follower) == _contents(leader)
    # a store as far as the snapshot already is not restored again
    assert await restore_latest(snapshots, follower, TABLE, PARTITION) is None
    leader.close()
    follower.close()


async def test_a_snapshot_removes_uploads_that_can_no_longer_win(engine: Engine) -> None:
    await engine.ensure_layout(replicas=3, lease_ttl_s=3)
    names = engine.names
    stream = names.snapshots_stream
    # chunks left by a leader that died mid-upload (epoch 1), and an upload under way by
    # a newer leader (epoch 5)
    died = names.snapshot_data_subject(PARTITION, 1, 30)
    newer = names.snapshot_data_subject(PARTITION, 5, 90)
    for subject in (died, newer):
        await engine.js.publish(subject, b"chunk", stream=stream)
    snapshots = SnapshotStore(engine)
    assert await snapshots.save(PARTITION, epoch=3, sequence=70, blob=b"state")
    info = await engine.js.stream_info(stream, subjects_filter=names.snapshot_subjects)
    left = set(info.state.subjects or {})
    found = await snapshots.latest(PARTITION)
    assert found is not None
    assert left == {found[0].data_subject, newer, names.snapshot_head_subject(PARTITION)}
