"""The registry's and the node's metadata, in files of its own.

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
from restate_server.storage.db import StoreOpenError

SCHEMA = keys.metadata("schema")
PARTITIONS = keys.metadata("partitions")
# the files under <base_dir>/metadata; each is replaced whole (written aside, synced,
# renamed): two records, written once per registration, need no database
_FILES = {SCHEMA: "schema", PARTITIONS: "partitions"}
# set once the legacy store was looked at, so that it is never opened again
_LEGACY_CHECKED = "legacy-checked"


class NodeMetadataStore:
    """A ``schema.registry.MetadataStore`` plus the node's fixed partition count."""

    def __init__(self, base_dir: str, *, sync_writes: bool = True) -> None:
        self.path = os.path.join(base_dir, "metadata")
        # makes the base dir too; a base dir that is a file fails here: 'Not a directory'
        os.makedirs(self.path, exist_ok=True)
        self.sync_writes = sync_writes
        if not os.path.exists(os.path.join(self.path, _LEGACY_CHECKED)):
            self._copy_legacy(os.path.join(base_dir, "db"))

    def load_schema(self) -> bytes | None:
        return self._read(SCHEMA)

    def save_schema(self, data: bytes) -> None:
        self._write(SCHEMA, data)

    def partition_count(self, default: int) -> int:
        """Fixed when the base dir is first used: keys must keep mapping to the same
        partition, so a later ``default`` does not change it."""
        raw = self._read(PARTITIONS)
        if raw is not None:
            return keys.decode_u64(raw)
        if default < 1:
            raise ValueError("at least one partition is needed")
        self._write(PARTITIONS, keys.encode_u64(default))
        return default

    def close(self) -> None:
        """Nothing is held open between writes."""

    def _copy_legacy(self, legacy_path: str) -> None:
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
                    if value is not None and self._read(key) is None:
                        self._write(key, value)
            finally:
                legacy.close()
        self._replace(_LEGACY_CHECKED, b"")

    def _read(self, key: bytes) -> bytes | None:
        try:
            with open(os.path.join(self.path, _FILES[key]), "rb") as file:
                return file.read()
        except FileNotFoundError:
            return None

    def _write(self, key: bytes, value: bytes) -> None:
        self._replace(_FILES[key], value)

    def _replace(self, name: str, value: bytes) -> None:
        """Replace file ``name`` atomically; synced (file and directory) when asked."""
        final = os.path.join(self.path, name)
        aside = final + ".tmp"
        with open(aside, "wb") as file:
            file.write(value)
            if self.sync_writes:
                file.flush()
                os.fsync(file.fileno())
        os.replace(aside, final)
        if self.sync_writes:
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
