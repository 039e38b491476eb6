"""Partition key ranges, and moving whole partitions between worker stores (real RocksDB)."""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable
from typing import Any

import msgspec
import pytest
import rocksdict
from hypothesis import example, given, settings
from hypothesis import strategies as st

from restate_server.partition.table import KEY_SPACE, PartitionTable
from restate_server.storage import keys, stores
from restate_server.storage.db import Store, store_options
from restate_server.storage.partition_ranges import (
    PARTITION_ID_TABLES,
    PARTITION_KEY_TABLES,
    UNPARTITIONED_TABLES,
    partition_key_ranges,
)
from restate_server.storage.stores import (
    HELD_PARTITIONS,
    INCOMING_PARTITIONS,
    PlacementError,
    decode_partitions,
    place_partitions,
    store_dir,
    worker_of,
)

# ---- partition key ranges


@functools.lru_cache(maxsize=64)
def _all_ranges(count: int) -> tuple[list[tuple[bytes, bytes]], ...]:
    table = PartitionTable(count)
    return tuple(partition_key_ranges(table, p) for p in range(count))


def _owners(key: bytes, count: int) -> list[int]:
    return [
        p
        for p, ranges in enumerate(_all_ranges(count))
        if any(start <= key < end for start, end in ranges)
    ]


def _keys_of(partition_key: int, partition_id: int, uuid: bytes) -> list[bytes]:
    invocation_id = partition_key.to_bytes(8, "big") + uuid
    return [
        keys.invocation_status(invocation_id),
        keys.journal_entry(invocation_id, 0),
        keys.journal_entry(invocation_id, 7),
        keys.state_entry(partition_key, "svc", "k", b"s"),
        keys.key_lock(partition_key, "svc", ""),
        keys.inbox_entry(partition_key, "svc", "key", 3),
        keys.promise(partition_key, "wf", "key", "p"),
        keys.timer(partition_id, 0, 0),
        keys.timer(partition_id, (1 << 64) - 1, (1 << 64) - 1),
        keys.outbox(partition_id, 5),
        keys.dedup(partition_id, b"\x00\x01"),
        keys.fsm_variable(partition_id, "inbox_seq"),
        keys.fsm_variable(partition_id, ""),
    ]


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 300))
@example(1)
def test_ranges_of_all_partitions_are_disjoint(count: int) -> None:
    every = sorted(r for ranges in _all_ranges(count) for r in ranges)
    for (start, end), (next_start, _) in itertools.pairwise(every):
        assert start < end <= next_start


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.integers(0, KEY_SPACE - 1), st.binary(min_size=16, max_size=16))
@example(1, 0, b"\x00" * 16)
@example(1, KEY_SPACE - 1, b"\xff" * 16)
@example(7, KEY_SPACE - 1, b"\xff" * 16)
@example(3, PartitionTable(3).range_of(1)[0], b"\x00" * 16)
@example(3, PartitionTable(3).range_of(1)[0] - 1, b"\xff" * 16)
def test_keys_of_a_partition_fall_in_its_ranges_only(
    count: int, partition_key: int, uuid: bytes
) -> None:
    table = PartitionTable(count)
    partition_id = table.partition_of(partition_key)
    for key in _keys_of(partition_key, partition_id, uuid):
        assert _owners(key, count) == [partition_id], key


def test_unpartitioned_keys_belong_to_no_partition() -> None:
    for key in (keys.metadata("schema"), keys.active_invocation(b"\x00" * 24)):
        assert _owners(key, 5) == []


def test_every_table_of_keys_is_classified() -> None:
    # a new table in keys.py must be added to partition_ranges (or declared unpartitioned)
    tags = {
        value
        for name, value in vars(keys).items()
        if name.isupper() and isinstance(value, bytes) and len(value) == 1
    }
    classified = PARTITION_KEY_TABLES + PARTITION_ID_TABLES + UNPARTITIONED_TABLES
    assert len(classified) == len(set(classified))
    assert tags == set(classified)


def test_a_partition_outside_the_table_is_refused() -> None:
    with pytest.raises(ValueError):
        partition_key_ranges(PartitionTable(4), 4)


# ---- stores: helpers

PARTITIONS = 12
TABLE = PartitionTable(PARTITIONS)
LEGACY_METADATA = {keys.metadata("schema"): b"schema", keys.metadata("partitions"): b"\x00" * 8}


def _partition_records(partition: int) -> dict[bytes, bytes]:
    """S/J/V/L/I/P/T/O/E/F records at both ends and the middle of a partition's range."""
    start, end = TABLE.range_of(partition)
    records: dict[bytes, bytes] = {}
    for n, pk in enumerate((start, (start + end) // 2, end - 1)):
        uuid = bytes([partition, n]) * 8
        for i, key in enumerate(_keys_of(pk, partition, uuid)):
            # statuses are msgpack arrays whose first field is the status (active index)
            records[key] = msgspec.msgpack.encode(["invoked", partition, n, i])
    return records


EXPECTED = {p: _partition_records(p) for p in range(PARTITIONS)}
PARTITION_OF = {key: p for p, records in EXPECTED.items() for key in records}


def _write_legacy_store(base_dir: str) -> None:
    """A single store as made before worker stores: every partition, no held record."""
    db = rocksdict.Rdict(store_dir(base_dir, 0), store_options())
    for records in EXPECTED.values():
        for key, value in records.items():
            db.put(key, value)
    for key, value in LEGACY_METADATA.items():
        db.put(key, value)
    db.close()


def _read_store(path: str) -> dict[bytes, bytes]:
    db = rocksdict.Rdict(path, store_options())
    try:
        return dict(db.items())
    finally:
        db.close()


def _store_indexes(base_dir: str) -> set[int]:
    found = set()
    for name in os.listdir(base_dir):
        if name == "db":
            found.add(0)
        elif name.startswith("db-"):
            found.add(int(name[3:]))
    return found


def _check_placed(base_dir: str, workers: int) -> None:
    """Every key exactly once, in the store of its partition's worker; records exact."""
    assert _store_indexes(base_dir) == set(range(workers))
    seen: dict[bytes, int] = {}
    for index in range(workers):
        content = _read_store(store_dir(base_dir, index))
        held = decode_partitions(content.pop(HELD_PARTITIONS))
        assert held == {p for p in range(PARTITIONS) if worker_of(p, workers) == index}
        assert INCOMING_PARTITIONS not in content
        for key, value in content.items():
            if key[:1] == keys.METADATA:
                assert index == 0 and LEGACY_METADATA.get(key) == value
                continue
            assert key not in seen, f"{key!r} in stores {seen[key]} and {index}"
            seen[key] = index
            partition = PARTITION_OF[key]
            assert value == EXPECTED[partition][key]
            assert worker_of(partition, workers) == index
    assert set(seen) == set(PARTITION_OF)


def _check_nothing_lost(base_dir: str) -> None:
    """After a crash: every partition is complete in some store that holds it."""
    contents = {i: _read_store(store_dir(base_dir, i)) for i in _store_indexes(base_dir)}
    for partition, records in EXPECTED.items():
        holders = [
            content
            for i, content in contents.items()
            if (i == 0 and HELD_PARTITIONS not in content)  # the legacy store: holds all
            or partition in decode_partitions(content.get(HELD_PARTITIONS, b"\x90"))
        ]
        assert any(all(c.get(k) == v for k, v in records.items()) for c in holders), partition


# ---- stores: placement


def test_store_dirs_and_workers(tmp_path) -> None:
    assert store_dir(str(tmp_path), 0) == str(tmp_path / "db")
    assert store_dir(str(tmp_path), 3) == str(tmp_path / "db-3")
    assert [worker_of(p, 3) for p in range(7)] == [0, 1, 2, 0, 1, 2, 0]
    with pytest.raises(ValueError):
        worker_of(1, 0)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_a_fresh_base_dir_gets_one_store_per_worker(tmp_path, workers: int) -> None:
    base = str(tmp_path / "base")
    report = place_partitions(base, TABLE, workers)
    # store 0 is made first, holding every (empty) partition; the others are handed over
    assert len(report.moves) == PARTITIONS - len(range(0, PARTITIONS, workers))
    assert report.keys_copied == 0 and report.repairs == []
    assert _store_indexes(base) == set(range(workers))
    for index in range(workers):
        held = decode_partitions(_read_store(store_dir(base, index))[HELD_PARTITIONS])
        assert held == set(range(index, PARTITIONS, workers))


def test_legacy_data_moves_through_3_then_2_then_1_workers(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(stores, "COPY_BATCH_KEYS", 7)  # several batches per partition
    base = str(tmp_path)
    _write_legacy_store(base)
    report = place_partitions(base, TABLE, 3, sync_writes=False)
    assert {(m.partition, m.source, m.target) for m in report.moves} == {
        (p, 0, p % 3) for p in range(PARTITIONS) if p % 3
    }
    assert report.keys_copied == sum(m.keys for m in report.moves)
    assert all(m.keys == len(EXPECTED[m.partition]) for m in report.moves)
    assert "8 moved" in report.summary()
    _check_placed(base, 3)

    report = place_partitions(base, TABLE, 2, sync_writes=False)
    assert report.removed_stores == [2]
    # p moves iff p % 3 != p % 2
    assert len(report.moves) == sum(1 for p in range(PARTITIONS) if p % 3 != p % 2)
    _check_placed(base, 2)

    report = place_partitions(base, TABLE, 1)
    assert report.removed_stores == [1]
    _check_placed(base, 1)


def test_placing_again_changes_nothing(tmp_path) -> None:
    base = str(tmp_path)
    _write_legacy_store(base)
    place_partitions(base, TABLE, 3, sync_writes=False)
    report = place_partitions(base, TABLE, 3, sync_writes=False)
    assert report.moves == [] and report.repairs == [] and report.removed_stores == []
    _check_placed(base, 3)


def test_workers_open_their_placed_stores(tmp_path) -> None:
    base = str(tmp_path)
    _write_legacy_store(base)
    place_partitions(base, TABLE, 3, sync_writes=False)
    for index in range(3):
        store = Store(store_dir(base, index), sync_writes=False)
        # three invocations per partition, all "invoked": the active index sees them
        assert len(store.active) == 3 * len(range(index, PARTITIONS, 3))
        store.close()


def test_more_workers_than_partitions(tmp_path) -> None:
    base = str(tmp_path)
    _write_legacy_store(base)
    place_partitions(base, PartitionTable(PARTITIONS), PARTITIONS + 2, sync_writes=False)
    assert _store_indexes(base) == set(range(PARTITIONS + 2))
    place_partitions(base, TABLE, 1, sync_writes=False)
    _check_placed(base, 1)


def test_a_missing_store_0_is_refused(tmp_path) -> None:
    base = str(tmp_path)
    place_partitions(base, TABLE, 2, sync_writes=False)
    os.rename(store_dir(base, 0), str(tmp_path / "elsewhere"))
    with pytest.raises(PlacementError):
        place_partitions(base, TABLE, 2, sync_writes=False)


def test_a_changed_partition_count_is_refused(tmp_path) -> None:
    base = str(tmp_path)
    place_partitions(base, TABLE, 2, sync_writes=False)
    with pytest.raises(PlacementError):
        place_partitions(base, PartitionTable(PARTITIONS - 1), 2, sync_writes=False)


# ---- stores: crash at every step of every move


class _Crash(Exception):
    pass


# a crash after each step; "before" a step is mostly "after" the one before it, except
# for the first step and for a store closed but not yet removed
CRASHES = [
    ("_begin_copy", True),
    ("_begin_copy", False),
    ("_write_bulk", False),
    ("_commit_copy", False),
    ("_release", False),
    ("_remove_store", True),
    ("_remove_store", False),
]


def _crash_at(monkeypatch, step: str, call: int, *, before: bool) -> None:
    """Make the ``call``-th call of ``step`` fail, before or after doing its work."""
    original: Callable[..., Any] = getattr(stores, step)
    calls = 0

    def crashing(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == call and before:
            raise _Crash(step)
        result = original(*args, **kwargs)
        if calls == call:
            raise _Crash(step)
        return result

    monkeypatch.setattr(stores, step, crashing)


@pytest.mark.parametrize(("step", "before"), CRASHES)
@pytest.mark.parametrize(("first", "then"), [(3, 3), (3, 2), (2, 1)])
def test_an_interrupted_placement_is_finished_by_the_next(
    tmp_path, monkeypatch, step: str, before: bool, first: int, then: int
) -> None:
    """Crash at the n-th call of ``step`` for every n, each time on the state the previous
    crash left; then place for ``then`` workers (maybe another count) and check."""
    monkeypatch.setattr(stores, "COPY_BATCH_KEYS", 10)  # several bulk writes per move
    base = str(tmp_path)
    _write_legacy_store(base)
    if first == 2:  # start from a placed layout, so that stores are also removed
        place_partitions(base, TABLE, 3, sync_writes=False)
    crashes = 0
    for call in range(1, 200):
        with monkeypatch.context() as patch:
            _crash_at(patch, step, call, before=before)
            try:
                place_partitions(base, TABLE, first, sync_writes=False)
            except _Crash:
                crashes += 1
                _check_nothing_lost(base)
                continue
        break
    assert crashes > 0 or (step == "_remove_store" and first == 3)
    place_partitions(base, TABLE, then, sync_writes=False)
    _check_placed(base, then)


def test_a_partial_copy_is_undone(tmp_path, monkeypatch) -> None:
    base = str(tmp_path)
    _write_legacy_store(base)
    monkeypatch.setattr(stores, "COPY_BATCH_KEYS", 5)
    with monkeypatch.context() as patch:
        _crash_at(patch, "_write_bulk", 2, before=False)
        with pytest.raises(_Crash):
            place_partitions(base, TABLE, 2, sync_writes=False)
    content = _read_store(store_dir(base, 1))
    assert decode_partitions(content[INCOMING_PARTITIONS]) == {1}
    assert decode_partitions(content[HELD_PARTITIONS]) == set()
    report = place_partitions(base, TABLE, 2, sync_writes=False)
    assert report.repairs == ["partial copy of 1 in store 1 undone"]
    _check_placed(base, 2)


def test_a_copy_held_twice_is_kept_once(tmp_path, monkeypatch) -> None:
    base = str(tmp_path)
    _write_legacy_store(base)
    with monkeypatch.context() as patch:
        _crash_at(patch, "_commit_copy", 1, before=False)
        with pytest.raises(_Crash):
            place_partitions(base, TABLE, 2, sync_writes=False)
    # with one worker now, store 0 is wanted: store 1's complete copy is the one dropped
    report = place_partitions(base, TABLE, 1, sync_writes=False)
    assert report.repairs == ["second copy of 1 in store 1 dropped (kept in store 0)"]
    assert report.moves == []
    _check_placed(base, 1)


def test_a_half_removed_store_is_removed_by_the_next_run(tmp_path, monkeypatch) -> None:
    base = str(tmp_path)
    _write_legacy_store(base)
    place_partitions(base, TABLE, 3, sync_writes=False)

    def crash(path: str) -> None:
        raise _Crash(path)

    with monkeypatch.context() as patch:
        patch.setattr(stores.shutil, "rmtree", crash)
        with pytest.raises(_Crash):
            place_partitions(base, TABLE, 2, sync_writes=False)
    assert os.path.isdir(store_dir(base, 2) + ".removing")
    place_partitions(base, TABLE, 2, sync_writes=False)
    assert not os.path.exists(store_dir(base, 2) + ".removing")
    _check_placed(base, 2)
