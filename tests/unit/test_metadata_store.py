"""The node's metadata store: schema and partition count, and the upgrade from one store."""

from __future__ import annotations

import os

from restate_server.schema.registry import MetadataStore
from restate_server.storage import keys
from restate_server.storage.db import Store
from restate_server.storage.metadata_store import NodeMetadataStore


def _legacy(base_dir: str, records: dict[bytes, bytes]) -> Store:
    store = Store(os.path.join(base_dir, "db"), sync_writes=False)
    store.write(dict(records))
    return store


def test_a_fresh_base_dir(tmp_path) -> None:
    metadata: MetadataStore = NodeMetadataStore(str(tmp_path))
    assert isinstance(metadata, NodeMetadataStore)
    assert metadata.path == str(tmp_path / "metadata")
    assert metadata.load_schema() is None
    assert metadata.partition_count(24) == 24
    assert metadata.partition_count(5) == 24  # fixed at the first use
    metadata.save_schema(b"v1")
    assert metadata.load_schema() == b"v1"
    metadata.close()
    # the legacy store is not created by looking for it
    assert not os.path.exists(tmp_path / "db")


def test_everything_persists_across_reopen(tmp_path) -> None:
    metadata = NodeMetadataStore(str(tmp_path))
    assert metadata.partition_count(8) == 8
    metadata.save_schema(b"v1")
    metadata.save_schema(b"v2")
    metadata.close()
    metadata = NodeMetadataStore(str(tmp_path), sync_writes=False)
    assert metadata.load_schema() == b"v2"
    assert metadata.partition_count(24) == 8
    metadata.close()


def test_the_legacy_store_records_are_copied_once(tmp_path) -> None:
    base = str(tmp_path)
    legacy = _legacy(
        base, {keys.metadata("schema"): b"old", keys.metadata("partitions"): keys.encode_u64(7)}
    )
    # a worker may have the legacy store open meanwhile: it is read without its lock
    metadata = NodeMetadataStore(base)
    assert metadata.load_schema() == b"old"
    assert metadata.partition_count(24) == 7
    metadata.save_schema(b"new")
    metadata.close()
    # left in place, and not read again
    assert legacy.get(keys.metadata("schema")) == b"old"
    legacy.write({keys.metadata("schema"): b"changed later"})
    legacy.close()
    metadata = NodeMetadataStore(base)
    assert metadata.load_schema() == b"new"
    assert metadata.partition_count(24) == 7
    metadata.close()


def test_a_legacy_store_without_a_schema(tmp_path) -> None:
    base = str(tmp_path)
    _legacy(base, {keys.metadata("partitions"): keys.encode_u64(3)}).close()
    metadata = NodeMetadataStore(base)
    assert metadata.load_schema() is None
    assert metadata.partition_count(24) == 3
    metadata.close()


def test_a_store_made_after_the_first_open_is_not_read(tmp_path) -> None:
    base = str(tmp_path)
    NodeMetadataStore(base).close()
    _legacy(base, {keys.metadata("schema"): b"worker store"}).close()
    metadata = NodeMetadataStore(base)
    assert metadata.load_schema() is None
    metadata.close()
