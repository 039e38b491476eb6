"""Group commit: synced writes that leave the GIL free, and reads that see only durable data."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from restate_server.storage.committer import Committer
from restate_server.storage.db import Store


class _RecordingDb:
    """Stands in for rocksdict.Rdict: records the calls a write makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def write(self, batch: Any, options: Any) -> None:
        self.calls.append(("write", options.sync))

    def flush_wal(self, sync: bool) -> None:
        self.calls.append(("flush_wal", sync))


def test_synced_write_is_an_unsynced_write_then_a_synced_wal_flush(tmp_path) -> None:
    # rocksdict holds the GIL through write(sync=True) but not through flush_wal(True)
    store = Store(str(tmp_path / "db"), sync_writes=True)
    real_db, store._db = store._db, _RecordingDb()  # type: ignore[assignment]
    store.write({b"a": b"1"})
    store.write_many([{b"b": b"2"}, {b"c": None}])
    assert store._db.calls == [  # type: ignore[attr-defined]
        ("write", False),
        ("flush_wal", True),
        ("write", False),
        ("flush_wal", True),
    ]
    store._db = real_db
    store.close()


def test_unsynced_store_never_flushes(tmp_path) -> None:
    store = Store(str(tmp_path / "db"), sync_writes=False)
    real_db, store._db = store._db, _RecordingDb()  # type: ignore[assignment]
    store.write({b"a": b"1"})
    assert store._db.calls == [("write", False)]  # type: ignore[attr-defined]
    store._db = real_db
    store.close()


class _SlowSyncStore:
    """A store whose write blocks (like an fsync) until the test releases it."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.syncing = False
        self.release = threading.Event()
        self.entered = threading.Event()

    def _apply(self, writes: dict[bytes, bytes | None]) -> None:
        self.syncing = True  # written, readable, not yet durable
        for key, value in writes.items():
            if value is None:
                self.data.pop(key, None)
            else:
                self.data[key] = value
        self.entered.set()
        self.release.wait(5)
        self.syncing = False

    def write(self, writes: dict[bytes, bytes | None]) -> None:
        self._apply(writes)

    def write_many(self, batches: list[dict[bytes, bytes | None]]) -> None:
        for writes in batches:
            self._apply(writes)


async def test_reads_wait_for_the_batch_being_synced() -> None:
    loop = asyncio.get_running_loop()
    store = _SlowSyncStore()
    committer = Committer(store, loop)  # type: ignore[arg-type]
    durable = loop.create_future()
    committer.submit({b"k": b"v"}, lambda: durable.set_result(True))
    await loop.run_in_executor(None, store.entered.wait, 5)

    seen: list[tuple[bool, bytes | None]] = []

    def read() -> bytes | None:
        seen.append((store.syncing, store.data.get(b"k")))
        return store.data.get(b"k")

    result = committer.read(read)
    await asyncio.sleep(0.05)
    assert seen == []  # not while the batch is being synced
    store.release.set()
    assert await asyncio.wait_for(result, 5) == b"v"
    assert seen == [(False, b"v")]
    assert await asyncio.wait_for(durable, 5)
    committer.close()


async def test_read_errors_reach_the_reader() -> None:
    loop = asyncio.get_running_loop()
    store = _SlowSyncStore()
    store.release.set()
    committer = Committer(store, loop)  # type: ignore[arg-type]

    def broken() -> None:
        raise KeyError("gone")

    try:
        await asyncio.wait_for(committer.read(broken), 5)
    except KeyError as exc:
        assert "gone" in str(exc)
    else:
        raise AssertionError("the read error was swallowed")
    committer.close()
