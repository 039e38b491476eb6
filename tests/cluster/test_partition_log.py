"""A partition's log in a three-server JetStream: fenced appends, replay, failover."""

from __future__ import annotations

import asyncio
import time

import pytest

from restate_server.cluster.engine import Engine
from restate_server.cluster.log_records import CommitRecord, FenceRecord
from restate_server.cluster.partition_log import Fenced, PartitionLog
from tests.support.jetstream import JetStreamCluster

LEASE_TTL_S = 3.0


async def _log(engine: Engine, partition: int, writer: str) -> PartitionLog:
    tail = await PartitionLog.tail(engine, partition)
    return PartitionLog(engine, partition, last_sequence=tail, writer=writer)


async def test_appends_are_read_back_in_order(engine: Engine) -> None:
    await engine.ensure_layout(replicas=3, lease_ttl_s=LEASE_TTL_S)
    log = await _log(engine, 7, "node-a")
    sequences = [
        await log.append(CommitRecord(1, {b"k%d" % i: b"v%d" % i, b"gone": None})) for i in range(5)
    ]
    assert sequences == sorted(sequences) and len(set(sequences)) == 5
    assert await PartitionLog.tail(engine, 7) == sequences[-1]
    # another partition's records interleave in the stream but not in this log
    other = await _log(engine, 8, "node-a")
    await other.append(CommitRecord(1, {b"x": b"y"}))
    read = [(seq, rec) async for seq, rec in log.records(0, await PartitionLog.tail(engine, 7))]
    assert [seq for seq, _ in read] == sequences
    assert [rec.writes for _, rec in read] == [
        {b"k%d" % i: b"v%d" % i, b"gone": None} for i in range(5)
    ]
    # from the middle
    tail_part = [seq async for seq, _ in log.records(sequences[2], sequences[-1])]
    assert tail_part == sequences[3:]


async def test_a_deposed_writer_cannot_append_after_the_fence(engine: Engine) -> None:
    await engine.ensure_layout(replicas=3, lease_ttl_s=LEASE_TTL_S)
    old = await _log(engine, 3, "node-a")
    await old.append(CommitRecord(1, {b"a": b"1"}))
    # a new leader reads the tail, then fences the log
    new = await _log(engine, 3, "node-b")
    fence_seq = await new.append(FenceRecord(2, "node-b"))
    with pytest.raises(Fenced):
        await old.append(CommitRecord(1, {b"a": b"stale"}))
    await new.append(CommitRecord(2, {b"a": b"2"}))
    records = [rec async for _, rec in new.records(0, new.last_sequence)]
    assert [type(r).__name__ for r in records] == ["CommitRecord", "FenceRecord", "CommitRecord"]
    assert b"stale" not in [r.writes.get(b"a") for r in records if isinstance(r, CommitRecord)]
    assert new.last_sequence > fence_seq


async def test_a_fence_loses_against_a_write_it_did_not_see(engine: Engine) -> None:
    """The new leader read the tail, then the old one wrote once more: the fence fails,
    the new leader reads again (and so replays that write) before fencing."""
    await engine.ensure_layout(replicas=3, lease_ttl_s=LEASE_TTL_S)
    old = await _log(engine, 4, "node-a")
    await old.append(CommitRecord(1, {b"a": b"1"}))
    new = await _log(engine, 4, "node-b")
    await old.append(CommitRecord(1, {b"a": b"late"}))
    with pytest.raises(Fenced):
        await new.append(FenceRecord(2, "node-b"))
    new.last_sequence = await PartitionLog.tail(engine, 4)
    await new.append(FenceRecord(2, "node-b"))
    with pytest.raises(Fenced):
        await old.append(CommitRecord(1, {b"a": b"after"}))


async def test_appends_go_on_when_the_stream_leader_dies(
    engine: Engine, jetstream: JetStreamCluster
) -> None:
    await engine.ensure_layout(replicas=3, lease_ttl_s=LEASE_TTL_S)
    log = await _log(engine, 1, "node-a")
    acknowledged = [await log.append(CommitRecord(1, {b"n": b"%d" % i})) for i in range(20)]
    info = await engine.js.stream_info(engine.names.log_stream)
    leader = jetstream.server(info.cluster.leader)
    leader.process.kill9()
    try:
        started = time.monotonic()
        acknowledged.append(await log.append(CommitRecord(1, {b"n": b"after"})))
        failover_s = time.monotonic() - started
        acknowledged += [await log.append(CommitRecord(1, {b"n": b"%d" % i})) for i in range(5)]
        read = [seq async for seq, _ in log.records(0, log.last_sequence)]
        assert read == acknowledged  # nothing acknowledged before the kill was lost
        assert failover_s < 10
    finally:
        leader.process.start()
        jetstream.wait_healthy([leader])
    # the cluster is whole again for the next tests
    await asyncio.wait_for(log.append(CommitRecord(1, {b"n": b"healed"})), 10)
