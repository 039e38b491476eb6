"""The registry's and the node's metadata, in a small RocksDB of its own.

With partitions spread over worker stores, the schema and the partition count
belong to no partition: they live in ``<base_dir>/metadata``, opened only by the
process that serves the admin API. Base dirs from before kept both in the single
store ``<base_dir>/db``; they are copied from there once, at the first open, and
left in place (that store is worker 0's now; placement never moves metadata keys).
Open this store before the workers start: the legacy store is read without its lock,
which is safe against a running worker but best done while none writes.
"""

from __future__ import annotations

import os

import rocksdict

from restate_server.storage import keys
from restate_server.storage.db import StoreOpenError, _open

SCHEMA = keys.metadata("schema")
PARTITIONS = keys.metadata("partitions")
# set once the legacy store was looked at, so that it is never opened again
_LEGACY_CHECKED = keys.metadata("legacy-checked")


def _metadata_options() -> rocksdict.Options:
    """A handful of records, written once per registration: no background parallelism
    and a tiny memtable. With the partition stores' options, the process with this idle
    store beside its partition store grew 2-4 MB during the first seconds of serving in
    2 of 4 runs of test_malicious_endpoints' memory check (0 of 4 with these)."""
    options = rocksdict.Options(raw_mode=True)
    options.create_if_missing(True)
    options.set_write_buffer_size(64 * 1024)
    options.set_max_background_jobs(1)
    return options


class NodeMetadataStore:
    """A ``schema.registry.MetadataStore`` plus the node's fixed partition count."""

    def __init__(self, base_dir: str, *, sync_writes: bool = True) -> None:
        self.path = os.path.join(base_dir, "metadata")
        # makes the base dir too; a base dir that is a file fails here: 'Not a directory'
        os.makedirs(self.path, exist_ok=True)
        self._db = _open(self.path, _metadata_options())
        self._unsynced = rocksdict.WriteOptions()
        self._unsynced.sync = False  # synced by flush_wal, which lets the GIL go
        self.sync_writes = sync_writes
        if self._db.get(_LEGACY_CHECKED) is None:
            self._copy_legacy(os.path.join(base_dir, "db"))

    def load_schema(self) -> bytes | None:
        return self._db.get(SCHEMA)

    def save_schema(self, data: bytes) -> None:
        self._write({SCHEMA: data})

    def partition_count(self, default: int) -> int:
        """Fixed when the base dir is first used: keys must keep mapping to the same
        partition, so a later ``default`` does not change it."""
        raw = self._db.get(PARTITIONS)
        if raw is not None:
            return keys.decode_u64(raw)
        if default < 1:
            raise ValueError("at least one partition is needed")
        self._write({PARTITIONS: keys.encode_u64(default)})
        return default

    def close(self) -> None:
        self._db.close()

    def _copy_legacy(self, legacy_path: str) -> None:
        records: dict[bytes, bytes] = {}
        # a base dir whose single store never existed has nothing to copy (and opening
        # a missing store read-only would create its directory)
        if os.path.exists(os.path.join(legacy_path, "CURRENT")):
            # read-only: takes no lock, so a worker may have the store open meanwhile
            try:
                legacy = rocksdict.Rdict(
                    legacy_path,
                    rocksdict.Options(raw_mode=True),
                    access_type=rocksdict.AccessType.read_only(),
                )
            except Exception as exc:  # rocksdict reports RocksDB errors as plain Exceptions
                raise StoreOpenError(f"cannot read the store at {legacy_path}: {exc}") from exc
            try:
                for key in (SCHEMA, PARTITIONS):
                    value = legacy.get(key)
                    if value is not None and self._db.get(key) is None:
                        records[key] = value
            finally:
                legacy.close()
        records[_LEGACY_CHECKED] = b""
        self._write(records)

    def _write(self, records: dict[bytes, bytes]) -> None:
        batch = rocksdict.WriteBatch(raw_mode=True)
        for key, value in records.items():
            batch.put(key, value)
        self._db.write(batch, self._unsynced)
        if self.sync_writes:
            self._db.flush_wal(True)
