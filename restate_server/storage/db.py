"""The RocksDB store (rocksdict in raw bytes mode)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import rocksdict

from restate_server.storage import keys
from restate_server.storage.active_index import TAG as ACTIVE_TAG
from restate_server.storage.active_index import ActiveIndex
from restate_server.storage.keys import prefix_end
from restate_server.storage.snapshot import Range, StoreSnapshot


class StoreOpenError(OSError):
    """The store cannot be opened (held by another process, unreadable, corrupt)."""


class StorageFull(OSError):
    """A write failed because the disk is full. Nothing of it is durable; RocksDB takes
    writes again on its own a few seconds after space is freed (it polls for space)."""


# how RocksDB words ENOSPC, on the write that hit it and on every write after it
_NO_SPACE = "No space left on device"


def _open(path: str, options: rocksdict.Options) -> rocksdict.Rdict:
    try:
        return rocksdict.Rdict(path, options)
    except Exception as exc:  # rocksdict reports RocksDB errors as plain Exceptions
        message = str(exc)
        if "LOCK" in message and "unavailable" in message:
            message = (
                f"the store at {path} is in use by another process (is another "
                "restate-server running on this base dir?)"
            )
        raise StoreOpenError(f"cannot open the store: {message}") from exc


def store_options() -> rocksdict.Options:
    """The options of every store: the workers' and the partition migration's."""
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    options.increase_parallelism(2)
    options.set_max_background_jobs(2)
    # Point lookups dominate (status, lock, state); whole-key bloom filters help them.
    options.set_memtable_whole_key_filtering(True)
    # Most records are overwritten or deleted soon after they are written (statuses,
    # inbox entries, timers): smaller memtables flush them to compressed files and
    # let the write-ahead log be recycled early, which keeps the data dir small.
    options.set_write_buffer_size(8 * 1024 * 1024)
    options.set_max_total_wal_size(32 * 1024 * 1024)
    options.set_compression_type(rocksdict.DBCompressionType.lz4())
    return options


class Store:
    """One RocksDB instance holding every table.

    Writes go through :meth:`write` with a whole batch at a time; with
    ``sync_writes`` (the default) each batch is fsynced before it returns.

    A synced write is done as an unsynced write followed by a synced flush of the
    write-ahead log: the same durability when the call returns, but rocksdict keeps
    the GIL through a synced ``write`` and lets it go during ``flush_wal``, so the
    event loop runs while the disk syncs. In between, the batch is readable before
    it is durable: readers that must not see that use :meth:`Committer.read`.
    """

    def __init__(self, path: str, *, sync_writes: bool = True) -> None:
        os.makedirs(path, exist_ok=True)
        self._db = _open(path, store_options())
        self._write_options = rocksdict.WriteOptions()
        self._write_options.sync = False  # synced by flush_wal (see the class doc)
        self.path = path
        self.sync_writes = sync_writes
        # not in RocksDB: kept in memory, built from the statuses (see active_index)
        self.active = ActiveIndex.of_statuses(self.scan_prefix(keys.INVOCATION_STATUS))

    def get(self, key: bytes) -> bytes | None:
        # point reads go to RocksDB only: active-index entries (tag A, in memory) are read
        # by range (scan_range, snapshots); no rule reads one by key, and this is the
        # hottest read
        return self._db.get(key)

    def snapshot(self, ranges: Iterable[Range] = ()) -> StoreSnapshot:
        """The store as it is now, frozen, with iterators over ``ranges`` opened at the
        same instant (see ``StoreSnapshot``)."""
        ranges = list(ranges)
        active = None
        if any(start[:1] == keys.ACTIVE_INVOCATION for start, _ in ranges):
            active = self.active.frozen()
        return StoreSnapshot(self._db, ranges, active)

    def scan_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.scan_range(prefix, prefix_end(prefix))

    def scan_range(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Yield (key, value) for start <= key < end, in key order."""
        if start[:1] == keys.ACTIVE_INVOCATION:
            yield from self.active.scan(start, end)
            return
        # The bound lets RocksDB stop at ``end``: without it, finding out that the range
        # is over means stepping to the next live key after it, over every tombstone in
        # between (dequeued inbox entries of other keys, say).
        options = rocksdict.ReadOptions()
        options.set_iterate_upper_bound(end)
        it = self._db.iter(options)
        it.seek(start)
        while it.valid():
            key = it.key()
            if key >= end:
                break
            yield key, it.value()
            it.next()

    def write(self, writes: dict[bytes, bytes | None]) -> None:
        """Apply puts (bytes) and deletes (None) atomically."""
        self.write_many([writes])

    def write_many(self, batches: list[dict[bytes, bytes | None]]) -> None:
        """Apply several batches, in order, as one atomic synced write."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        indexed: list[tuple[bytes, bytes | None]] = []
        for writes in batches:
            for key, value in writes.items():
                if key[0] == ACTIVE_TAG:
                    indexed.append((key, value))
                elif value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
        self._write_durably(batch)
        if indexed:
            self.active.apply(indexed)

    def _write_durably(self, batch: rocksdict.WriteBatch) -> None:
        try:
            self._db.write(batch, self._write_options)
            if self.sync_writes:
                self._db.flush_wal(True)
        except Exception as exc:  # rocksdict reports RocksDB errors as plain Exceptions
            if _NO_SPACE in str(exc):
                raise StorageFull(str(exc)) from exc
            raise

    def memtable_bytes(self) -> tuple[int, int]:
        """Memory held by RocksDB's memtables: (all, not yet flushed). Bounded by the
        write buffer size and count; it grows with every write until a flush."""
        db = self._db
        try:
            return (
                db.property_int_value("rocksdb.size-all-mem-tables") or 0,
                db.property_int_value("rocksdb.cur-size-all-mem-tables") or 0,
            )
        except rocksdict.DbClosedError:  # a scrape while the server stops
            return (0, 0)

    def close(self) -> None:
        self._db.close()
