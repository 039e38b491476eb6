"""One RocksDB store per worker process, each holding whole partitions.

Worker ``k`` of ``N`` owns store ``k`` and every partition ``p`` with ``p % N == k``
(one store per worker rather than per partition: one WAL fsync per group commit).
:func:`place_partitions` runs before any worker opens its store and moves
partitions between stores so that this holds for the current ``N``.

Each store records, in its metadata table, the partitions it holds completely
(``held``) and those being copied into it (``incoming``). A partition moves from
store A to store B in four steps, each a separate RocksDB write:

1. B: add p to ``incoming`` (synced);
2. copy every key of p's ranges from A to B in bounded batches (unsynced);
3. B: add p to ``held``, drop it from ``incoming`` (synced: the WAL sync makes the
   whole copy durable with it);
4. A: delete p's ranges and drop p from ``held``, in one atomic synced batch.

Why a crash at any point loses and duplicates nothing: before step 3 commits, A
still holds p completely (it deletes only in step 4, after B's commit), so a
partition listed as ``incoming`` is a partial copy and is safe to delete and redo;
once step 3 commits, B's copy is complete, and until step 4 commits A's copy is
still complete, so a partition held by two stores is complete in both and either
may be kept (the one the current placement wants, else the lowest index). Neither
rule depends on ``N``, so ``N`` may change between a crash and the next run. Data
of p lives only in stores that hold p or list it as incoming: step 1 precedes any
copy and step 4 deletes the data with the claim. With ``sync_writes=False`` this
holds against process crashes only, not against power loss.

A store with no ``held`` record: store 0 made before this change holds every
partition (the record is written as soon as it is opened, before any other store
exists); any other store was created by a run that crashed before step 1, so it is
empty. Stores beyond ``N`` are renamed away once empty, then deleted.
"""

from __future__ import annotations

import os
import re
import shutil
import time

import msgspec
import rocksdict

from restate_server.partition.table import PartitionTable
from restate_server.storage import keys
from restate_server.storage.db import _open, store_options
from restate_server.storage.partition_ranges import partition_key_ranges

HELD_PARTITIONS = keys.metadata("held-partitions")
INCOMING_PARTITIONS = keys.metadata("incoming-partitions")

# bulk copy batches: bounded memory, and few enough writes to be cheap
COPY_BATCH_BYTES = 4 * 1024 * 1024
COPY_BATCH_KEYS = 10_000

_STORE_NAME = re.compile(r"db(?:-([1-9][0-9]*))?")
# a store being deleted: renamed first, so a half-deleted one is never opened
_REMOVING = ".removing"

_PARTITIONS = msgspec.msgpack.Decoder(list[int])


class PlacementError(RuntimeError):
    """The stores of a base dir are in a state no crash of ours leaves behind."""


class Move(msgspec.Struct, frozen=True):
    partition: int
    source: int
    target: int
    keys: int


class PlacementReport(msgspec.Struct):
    workers: int
    moves: list[Move] = msgspec.field(default_factory=list)
    keys_copied: int = 0
    seconds: float = 0.0
    removed_stores: list[int] = msgspec.field(default_factory=list)
    # what an earlier, interrupted run left behind and this one cleaned up
    repairs: list[str] = msgspec.field(default_factory=list)

    def summary(self) -> str:
        moved = ", ".join(f"{m.partition}: {m.source}->{m.target}" for m in self.moves)
        text = (
            f"partitions placed on {self.workers} stores in {self.seconds:.3f} s: "
            f"{len(self.moves)} moved ({moved or 'none'}), {self.keys_copied} keys copied"
        )
        if self.removed_stores:
            text += f", stores removed: {self.removed_stores}"
        if self.repairs:
            text += "; repaired: " + "; ".join(self.repairs)
        return text


def store_dir(base_dir: str, index: int) -> str:
    """Store 0 keeps the name the single store always had, so old base dirs work."""
    return os.path.join(base_dir, "db" if index == 0 else f"db-{index}")


def worker_of(partition_id: int, workers: int) -> int:
    if workers < 1:
        raise ValueError("at least one worker is needed")
    return partition_id % workers


def encode_partitions(partitions: set[int]) -> bytes:
    return msgspec.msgpack.encode(sorted(partitions))


def decode_partitions(raw: bytes) -> set[int]:
    return set(_PARTITIONS.decode(raw))


class _Store:
    """A store opened for placement (raw rocksdict: no active index is needed here)."""

    def __init__(self, index: int, db: rocksdict.Rdict, sync_writes: bool) -> None:
        self.index = index
        self.db = db
        held = db.get(HELD_PARTITIONS)
        incoming = db.get(INCOMING_PARTITIONS)
        self.has_record = held is not None
        self.held = decode_partitions(held) if held is not None else set()
        self.incoming = decode_partitions(incoming) if incoming is not None else set()
        self._synced = rocksdict.WriteOptions()
        self._synced.sync = sync_writes

    def commit(self, batch: rocksdict.WriteBatch | None = None) -> None:
        """Write ``batch`` with the current records, atomically and synced."""
        batch = batch if batch is not None else rocksdict.WriteBatch(raw_mode=True)
        batch.put(HELD_PARTITIONS, encode_partitions(self.held))
        if self.incoming:
            batch.put(INCOMING_PARTITIONS, encode_partitions(self.incoming))
        else:
            batch.delete(INCOMING_PARTITIONS)
        self.db.write(batch, self._synced)
        self.has_record = True


def place_partitions(
    base_dir: str, table: PartitionTable, workers: int, *, sync_writes: bool = True
) -> PlacementReport:
    """Move partitions so that store k holds exactly those of worker k; delete the
    stores beyond ``workers``. Idempotent; finishes what an interrupted run began."""
    if workers < 1:
        raise ValueError("at least one worker is needed")
    began = time.monotonic()
    report = PlacementReport(workers=workers)
    os.makedirs(base_dir, exist_ok=True)
    _finish_removals(base_dir)
    existing = _existing_stores(base_dir)
    if workers == 1 and existing == [0]:
        # store 0 alone holds every partition (a store is removed only once emptied, and
        # a missing record means "all"): the single process need not open it twice
        report.seconds = time.monotonic() - began
        return report
    if existing and 0 not in existing:
        raise PlacementError(f"{store_dir(base_dir, 0)} is missing but other stores exist")
    stores: dict[int, _Store] = {}
    try:
        # store 0 first: its legacy "holds everything" must be recorded before others exist
        for index in sorted(set(existing) | set(range(workers))):
            store = _Store(index, _open(store_dir(base_dir, index), store_options()), sync_writes)
            stores[index] = store
            if not store.has_record and index == 0:
                if len(existing) > 1:
                    raise PlacementError(f"store 0 of {base_dir} has no partition record")
                store.held = set(range(table.count))
                store.commit()
        _fsync_dir(base_dir)  # the new stores' directory entries, before data moves in
        _repair(stores, table, workers, report)
        empty: dict[tuple[_Store, _Store], set[int]] = {}
        for partition in range(table.count):
            source = next(s for s in stores.values() if partition in s.held)
            target = stores[worker_of(partition, workers)]
            if source is target:
                continue
            if _is_empty(source.db, partition_key_ranges(table, partition)):
                empty.setdefault((source, target), set()).add(partition)
            else:
                _move(partition, source, target, table, report)
        for (source, target), partitions in empty.items():
            _move_empty(partitions, source, target, table, report)
        for index in sorted(stores):
            if index >= workers:
                store = stores.pop(index)
                if store.held or store.incoming:  # cannot happen: every partition moved
                    raise PlacementError(f"store {index} still holds {sorted(store.held)}")
                store.db.close()
                _remove_store(base_dir, index)
                report.removed_stores.append(index)
    finally:
        for store in stores.values():
            store.db.close()
    report.seconds = time.monotonic() - began
    return report


def _repair(
    stores: dict[int, _Store], table: PartitionTable, workers: int, report: PlacementReport
) -> None:
    """Undo partial copies, drop second complete copies, check every partition is held."""
    for store in stores.values():
        if store.incoming:
            batch = rocksdict.WriteBatch(raw_mode=True)
            # never delete a held partition's data (a held one is not incoming, by step 3)
            for partition in sorted(store.incoming - store.held):
                _delete_ranges(batch, table, partition)
                report.repairs.append(f"partial copy of {partition} in store {store.index} undone")
            store.incoming.clear()
            store.commit(batch)
        stray = {p for p in store.held if not 0 <= p < table.count}
        if stray:
            raise PlacementError(
                f"store {store.index} holds partitions {sorted(stray)} of no table of "
                f"{table.count} (was the partition count changed?)"
            )
    for partition in range(table.count):
        holders = [s for s in stores.values() if partition in s.held]
        if not holders:
            raise PlacementError(f"partition {partition} is held by no store")
        wanted = worker_of(partition, workers)
        keep = next((s for s in holders if s.index == wanted), holders[0])
        for store in holders:
            if store is not keep:
                _release(store, table, {partition})
                report.repairs.append(
                    f"second copy of {partition} in store {store.index} dropped"
                    f" (kept in store {keep.index})"
                )


def _move(
    partition: int, source: _Store, target: _Store, table: PartitionTable, report: PlacementReport
) -> None:
    _begin_copy(target, partition)
    copied = _copy_ranges(source.db, target.db, partition_key_ranges(table, partition))
    _commit_copy(target, {partition})
    _release(source, table, {partition})
    report.moves.append(Move(partition, source.index, target.index, copied))
    report.keys_copied += copied


def _move_empty(
    partitions: set[int],
    source: _Store,
    target: _Store,
    table: PartitionTable,
    report: PlacementReport,
) -> None:
    """Steps 3 and 4 only, for many partitions at once (a fresh base dir): there is
    nothing to copy, so nothing can be partial and nothing needs deleting."""
    _commit_copy(target, partitions)
    _release(source, table, partitions, delete=False)
    report.moves.extend(Move(p, source.index, target.index, 0) for p in sorted(partitions))


# The steps of a move are module functions so that tests can interrupt each of them.


def _begin_copy(target: _Store, partition: int) -> None:
    target.incoming.add(partition)
    target.commit()


def _copy_ranges(
    source: rocksdict.Rdict, target: rocksdict.Rdict, ranges: list[tuple[bytes, bytes]]
) -> int:
    """Copy every key of ``ranges``, unsynced (the commit's sync covers it); the count."""
    copied = 0
    batch = rocksdict.WriteBatch(raw_mode=True)
    size = 0
    for start, end in ranges:
        options = rocksdict.ReadOptions()
        options.set_iterate_upper_bound(end)
        it = source.iter(options)
        try:
            it.seek(start)
            while it.valid():
                key, value = it.key(), it.value()
                batch.put(key, value)
                size += len(key) + len(value)
                if batch.len() >= COPY_BATCH_KEYS or size >= COPY_BATCH_BYTES:
                    copied += batch.len()
                    _write_bulk(target, batch)
                    batch = rocksdict.WriteBatch(raw_mode=True)
                    size = 0
                it.next()
        finally:
            del it  # an iterator keeps its store open (and locked) past close()
    if batch.len():
        copied += batch.len()
        _write_bulk(target, batch)
    return copied


def _write_bulk(target: rocksdict.Rdict, batch: rocksdict.WriteBatch) -> None:
    options = rocksdict.WriteOptions()
    options.sync = False
    target.write(batch, options)


def _commit_copy(target: _Store, partitions: set[int]) -> None:
    target.incoming -= partitions
    target.held |= partitions
    target.commit()


def _release(
    store: _Store, table: PartitionTable, partitions: set[int], *, delete: bool = True
) -> None:
    """Delete the partitions' data and claims from ``store`` in one atomic batch."""
    batch = rocksdict.WriteBatch(raw_mode=True)
    if delete:
        for partition in sorted(partitions):
            _delete_ranges(batch, table, partition)
    store.held -= partitions
    store.commit(batch)


def _is_empty(db: rocksdict.Rdict, ranges: list[tuple[bytes, bytes]]) -> bool:
    for start, end in ranges:
        options = rocksdict.ReadOptions()
        options.set_iterate_upper_bound(end)
        it = db.iter(options)
        it.seek(start)
        if it.valid():
            return False
    return True


def _delete_ranges(batch: rocksdict.WriteBatch, table: PartitionTable, partition: int) -> None:
    for start, end in partition_key_ranges(table, partition):
        batch.delete_range(start, end)


def _existing_stores(base_dir: str) -> list[int]:
    found = []
    for name in os.listdir(base_dir):
        match = _STORE_NAME.fullmatch(name)
        if match and os.path.isdir(os.path.join(base_dir, name)):
            found.append(int(match.group(1) or 0))
    return sorted(found)


def _remove_store(base_dir: str, index: int) -> None:
    path = store_dir(base_dir, index)
    doomed = path + _REMOVING
    os.rename(path, doomed)
    _fsync_dir(base_dir)
    shutil.rmtree(doomed)


def _finish_removals(base_dir: str) -> None:
    for name in os.listdir(base_dir):
        if name.endswith(_REMOVING) and _STORE_NAME.fullmatch(name[: -len(_REMOVING)]):
            shutil.rmtree(os.path.join(base_dir, name))


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
