"""Commit groups through a partition's log in JetStream, and rebuild a store from it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from restate_server.cluster.catch_up import catch_up
from restate_server.cluster.engine import Engine
from restate_server.cluster.log_committer import LogCommitter, applied_sequence
from restate_server.cluster.log_records import FenceRecord
from restate_server.cluster.partition_log import Fenced, PartitionLog
from restate_server.storage import keys
from restate_server.storage.db import Store

PARTITION = 2


def _state(partition_key: int, name: str) -> bytes:
    return keys.state_entry(partition_key, "Counter", "k", name.encode())


def _partition_contents(store: Store) -> dict[bytes, bytes]:
    return dict(store.scan_prefix(keys.STATE))


async def _committer(
    engine: Engine, store: Store, writer: str, fenced: list[Fenced]
) -> tuple[LogCommitter, PartitionLog]:
    tail = await PartitionLog.tail(engine, PARTITION)
    partition_log = PartitionLog(engine, PARTITION, last_sequence=tail, writer=writer)
    await catch_up(partition_log, store, tail)
    return LogCommitter(partition_log, store, epoch=1, on_fenced=fenced.append), partition_log


async def test_groups_are_acknowledged_after_the_log_holds_them(
    engine: Engine, tmp_path: Path
) -> None:
    await engine.ensure_layout(replicas=3, lease_ttl_s=3)
    store = Store(str(tmp_path / "a"), sync_writes=False)
    fenced: list[Fenced] = []
    committer, partition_log = await _committer(engine, store, "node-a", fenced)
    done: list[int] = []
    tail_at_ack: list[int] = []

    def acknowledged(i: int) -> None:
        done.append(i)
        # the store holds the group when its callback runs, and so does the log
        assert store.get(_state(1, f"n{i}")) == b"%d" % i
        tail_at_ack.append(partition_log.last_sequence)

    for i in range(10):
        committer.submit({_state(1, f"n{i}"): b"%d" % i}, lambda i=i: acknowledged(i))
        if i == 4:
            await asyncio.sleep(0)  # some groups leave alone, the rest together
    await committer.wait_idle()
    assert done == list(range(10)) and not fenced
    assert await PartitionLog.tail(engine, PARTITION) == partition_log.last_sequence
    assert applied_sequence(store, PARTITION) == partition_log.last_sequence
    # fewer records than groups: groups queued during an append left together
    assert 1 <= committer.records_written < 10
    store.close()


async def test_a_new_node_rebuilds_the_partition_from_the_log(
    engine: Engine, tmp_path: Path
) -> None:
    await engine.ensure_layout(replicas=3, lease_ttl_s=3)
    first = Store(str(tmp_path / "a"), sync_writes=False)
    fenced: list[Fenced] = []
    committer, _ = await _committer(engine, first, "node-a", fenced)
    for i in range(20):
        committer.submit({_state(1, f"n{i % 7}"): b"%d" % i}, lambda: None)
        await asyncio.sleep(0)
    committer.submit({_state(1, "n3"): None}, lambda: None)  # a delete replays too
    await committer.wait_idle()
    expected = _partition_contents(first)
    assert _state(1, "n3") not in expected and len(expected) == 6

    second = Store(str(tmp_path / "b"), sync_writes=False)
    tail = await PartitionLog.tail(engine, PARTITION)
    follower_log = PartitionLog(engine, PARTITION, last_sequence=0, writer="node-b")
    assert await catch_up(follower_log, second, tail) == tail
    assert _partition_contents(second) == expected
    # catching up again finds nothing new
    assert await catch_up(follower_log, second, tail) == tail
    first.close()
    second.close()


async def test_a_fenced_committer_acknowledges_nothing(engine: Engine, tmp_path: Path) -> None:
    await engine.ensure_layout(replicas=3, lease_ttl_s=3)
    store = Store(str(tmp_path / "a"), sync_writes=False)
    fenced: list[Fenced] = []
    committer, _ = await _committer(engine, store, "node-a", fenced)
    committer.submit({_state(1, "before"): b"1"}, lambda: None)
    await committer.wait_idle()
    # another node takes the partition and fences its log
    tail = await PartitionLog.tail(engine, PARTITION)
    new_leader = PartitionLog(engine, PARTITION, last_sequence=tail, writer="node-b")
    await new_leader.append(FenceRecord(2, "node-b"))

    acknowledged: list[str] = []
    committer.submit({_state(1, "after"): b"2"}, lambda: acknowledged.append("after"))
    await committer.wait_idle()
    assert len(fenced) == 1 and acknowledged == []
    assert store.get(_state(1, "after")) is None
    with pytest.raises(RuntimeError):  # a fenced committer takes no new work
        committer.submit({_state(1, "later"): b"3"}, lambda: None)
    store.close()
