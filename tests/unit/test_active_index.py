"""The active-invocation index (``keys.ACTIVE_INVOCATION``): one entry per invocation that
is not completed, holding its status, written with the status record; recovery and the
invocation tables read it instead of every retained status."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from restate_server.partition.actions import InvokeAttempt
from restate_server.partition.commands import (
    AttemptFailed,
    JournalCommand,
    KillInvocation,
    PurgeInvocation,
    Recover,
)
from restate_server.partition.state_machine import StateMachine
from restate_server.partition.table import PartitionTable
from restate_server.protocol import messages as pm
from restate_server.storage import keys
from restate_server.storage.db import Store
from restate_server.storage.records import Failure, decode_status
from restate_server.storage.transaction import Transaction
from tests.unit.fake_schema import FakeSchema
from tests.unit.partition_harness import GREETER, Harness, counter, id_str
from tests.unit.query_support import json_rows, view_of

DAY = 86_400_000


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(str(tmp_path / "db"), FakeSchema())
    yield harness
    harness.close()


def indexed(h: Harness) -> dict[bytes, str]:
    return {k[1:]: v.decode() for k, v in h.store.scan_prefix(keys.ACTIVE_INVOCATION)}


def from_statuses(h: Harness) -> dict[bytes, str]:
    """What the index must hold, computed from every stored status."""
    out = {}
    for key, raw in h.store.scan_prefix(keys.INVOCATION_STATUS):
        status = decode_status(raw).status
        if status != "completed":
            out[key[1:]] = status
    return out


def test_the_index_follows_the_status(h: Harness) -> None:
    running, _ = h.invoke(GREETER, completion_retention_ms=DAY)
    assert indexed(h) == {running: "invoked"}
    h.sdk(running, pm.SleepCommandMessage(wake_up_time=h.now + 10, result_completion_id=1))
    h.suspend(running, [1])
    assert indexed(h) == {running: "suspended"}
    holder, _ = h.invoke(counter("k"))
    queued, _ = h.invoke(counter("k"))
    assert indexed(h) == {running: "suspended", holder: "invoked", queued: "inboxed"}
    h.end(holder)
    # the queued one runs now; the completed one leaves the index
    assert indexed(h) == {running: "suspended", queued: "invoked"}
    assert indexed(h) == from_statuses(h)


def test_journal_entries_leave_the_index_alone(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER)
    txn = Transaction(h.store)
    message = pm.OutputCommandMessage(value=b'"x"')
    command = JournalCommand(
        invocation_id,
        h.status(invocation_id).epoch,
        message.TYPE,
        pm.encode_message(message),
        message,
    )
    h.machine.apply(txn, command, h.now)
    assert keys.invocation_status(invocation_id) in txn.writes
    assert keys.active_invocation(invocation_id) not in txn.writes


def test_paused_killed_and_purged_invocations(h: Harness) -> None:
    paused, _ = h.invoke(GREETER, completion_retention_ms=DAY)
    h.apply(AttemptFailed(paused, h.status(paused).epoch, Failure(500, "boom"), pause=True))
    assert indexed(h) == {paused: "paused"}
    h.apply(KillInvocation(paused))
    assert indexed(h) == {} == from_statuses(h)
    h.apply(PurgeInvocation(paused))
    assert not h.has_status(paused) and indexed(h) == {}


def test_the_index_is_not_in_rocksdb_and_is_rebuilt_at_open(tmp_path: Path) -> None:
    h = Harness(str(tmp_path / "db"), FakeSchema())
    try:
        running, _ = h.invoke(GREETER)
        done, _ = h.invoke(GREETER, completion_retention_ms=DAY)
        h.end(done)
        suspended, _ = h.invoke(GREETER)
        h.sdk(suspended, pm.SleepCommandMessage(wake_up_time=h.now + 10, result_completion_id=1))
        h.suspend(suspended, [1])
        expected = {running: "invoked", suspended: "suspended"}
        assert indexed(h) == expected
        # nothing of it in RocksDB itself
        assert h.store.get(keys.active_invocation(running)) is None
        h.store.close()
        h.store = Store(str(tmp_path / "db"), sync_writes=False)
        assert indexed(h) == expected == from_statuses(h)
        h.machine = StateMachine(0, PartitionTable(1), FakeSchema())
        h.machine.load(Transaction(h.store))
        actions = h.apply(Recover())
        # recovery restarts the running one only (it reads the index)
        assert [a.invocation_id for a in actions if isinstance(a, InvokeAttempt)] == [running]
    finally:
        h.close()


def test_a_snapshot_keeps_the_index_of_its_instant(h: Harness) -> None:
    first, _ = h.invoke(GREETER)
    start, end = keys.ACTIVE_INVOCATION, keys.prefix_end(keys.ACTIVE_INVOCATION)
    snapshot = h.store.snapshot([(start, end)])
    h.end(first)
    second, _ = h.invoke(GREETER)
    assert [k[1:] for k, _ in snapshot.items(start, end)] == [first]
    assert indexed(h) == {second: "invoked"}
    snapshot.release()


def test_queries_without_completed_rows_read_the_index(h: Harness) -> None:
    retained = []
    for _ in range(5):
        invocation_id, _ = h.invoke(GREETER, completion_retention_ms=DAY)
        h.end(invocation_id)
        retained.append(invocation_id)
    running, _ = h.invoke(GREETER)
    opener = view_of(h.store)
    rows = json_rows("SELECT id, status FROM sys_invocation WHERE status != 'completed'", opener)
    # no invoker state here: an invoked invocation shows as ready
    assert rows == [{"id": id_str(running), "status": "ready"}]
    assert [start[:1] for start, _ in opener.ranges] == [keys.ACTIVE_INVOCATION]
    rows = json_rows(
        "SELECT id FROM sys_invocation_status WHERE status IN ('invoked', 'suspended')", opener
    )
    assert rows == [{"id": id_str(running)}]
    assert [start[:1] for start, _ in opener.ranges] == [keys.ACTIVE_INVOCATION]
    # completed rows: every stored status is read
    rows = json_rows("SELECT COUNT(*) AS n FROM sys_invocation WHERE status = 'completed'", opener)
    assert rows == [{"n": 5}]
    assert [start[:1] for start, _ in opener.ranges] == [keys.INVOCATION_STATUS]


@pytest.mark.parametrize("table", ["sys_invocation", "sys_invocation_status"])
def test_status_only_scans_count_what_the_full_scan_sees(h: Harness, table: str) -> None:
    """COUNT(*) and per-status counts read the index and count the other records; the
    same figures as a scan that reads every record (projecting the id as well)."""
    for i in range(7):
        invocation_id, _ = h.invoke(GREETER, completion_retention_ms=DAY)
        if i % 3:
            h.end(invocation_id)
    holder, _ = h.invoke(counter("k"))
    h.invoke(counter("k"))  # queued
    h.sdk(holder, pm.SleepCommandMessage(wake_up_time=h.now + 10, result_completion_id=1))
    h.suspend(holder, [1])
    opener = view_of(h.store, partitions=4)
    fast = json_rows(
        f"SELECT status, COUNT(*) AS n FROM {table} GROUP BY status ORDER BY status", opener
    )
    assert any(start[:1] == keys.ACTIVE_INVOCATION for start, _ in opener.ranges)
    full = json_rows(
        f"SELECT status, COUNT(id) AS n FROM {table} GROUP BY status ORDER BY status", opener
    )
    assert fast == full
    assert sum(row["n"] for row in fast) == 9
    assert json_rows(f"SELECT COUNT(*) AS n FROM {table}", opener) == [{"n": 9}]
    limited = f"SELECT COUNT(1) AS n FROM (SELECT * FROM {table} LIMIT 5)"
    assert json_rows(limited, opener) == [{"n": 5}]
