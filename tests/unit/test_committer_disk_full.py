"""A full disk under the group commit: the batch that failed is tried again until the
disk takes it, nothing is acknowledged before, order holds, ``unavailable`` says why
meanwhile, consistent reads wait while queries do not, and closing while full ends it."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from restate_server.storage import committer as committer_module
from restate_server.storage.committer import Committer
from restate_server.storage.db import StorageFull, Store


class _FullDisk:
    """A store whose disk is full until ``free()``: every write raises StorageFull."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}
        self.full = threading.Event()
        self.full.set()
        self.attempts = 0

    def free(self) -> None:
        self.full.clear()

    def write(self, writes: dict[bytes, bytes | None]) -> None:
        self.write_many([writes])

    def write_many(self, batches: list[dict[bytes, bytes | None]]) -> None:
        self.attempts += 1
        if self.full.is_set():
            raise StorageFull("IO error: No space left on device: While appending to file")
        for writes in batches:
            for key, value in writes.items():
                if value is not None:
                    self.data[key] = value

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(committer_module, "FULL_RETRY_S", 0.01)


async def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)


async def test_the_failed_batch_waits_for_space_and_nothing_is_acknowledged_before() -> None:
    store = _FullDisk()
    committer = Committer(store, asyncio.get_running_loop())  # type: ignore[arg-type]
    acked: list[str] = []
    committer.submit({b"a": b"1"}, lambda: acked.append("a"))
    await _until(lambda: committer.unavailable is not None)
    assert committer.unavailable == "the disk is full"
    committer.submit({b"b": b"2"}, lambda: acked.append("b"))  # queued behind it
    consistent = committer.read(lambda: store.get(b"a"))
    query = committer.read(lambda: "snapshot", consistent=False)
    assert await query == "snapshot"  # a query does not wait for the disk
    await _until(lambda: store.attempts >= 3)
    assert acked == [] and not consistent.done()
    store.free()
    await _until(lambda: acked == ["a", "b"])
    assert committer.unavailable is None
    assert await consistent == b"1"  # after the batch that was waiting
    committer.close()


async def test_closing_while_full_ends_the_writer_without_acknowledging() -> None:
    store = _FullDisk()
    committer = Committer(store, asyncio.get_running_loop())  # type: ignore[arg-type]
    acked: list[str] = []
    committer.submit({b"a": b"1"}, lambda: acked.append("a"))
    await _until(lambda: committer.unavailable is not None)
    committer.close()
    assert not committer._thread.is_alive()
    await asyncio.sleep(0.05)
    assert acked == [] and store.data == {}


def test_enospc_from_rocksdb_is_storage_full(tmp_path: Any) -> None:
    store = Store(str(tmp_path / "db"))

    class _NoSpaceDb:
        def write(self, batch: Any, options: Any) -> None:
            raise Exception("IO error: No space left on device: While appending to file: x")

    real, store._db = store._db, _NoSpaceDb()  # type: ignore[assignment]
    with pytest.raises(StorageFull):
        store.write({b"a": b"1"})
    store._db = real
    store.close()


async def test_the_admin_api_refuses_writes_but_not_reads_while_full() -> None:
    from types import SimpleNamespace

    from restate_server.admin.routing import Call, Router
    from restate_server.http_server import Request, Response

    async def ok(call: Call) -> Response:
        return Response(200, b"ok")

    state = SimpleNamespace(storage=SimpleNamespace(unavailable="the disk is full"))
    router = Router(state)
    for method, path in (("POST", "/deployments"), ("GET", "/deployments"), ("POST", "/query")):
        router.add(method, path, ok)

    async def status(method: str, path: str) -> int:
        return (await router.dispatch(Request(method, path, [], b""))).status

    assert await status("POST", "/deployments") == 503
    assert await status("GET", "/deployments") == 200
    assert await status("POST", "/query") == 200
    state.storage.unavailable = None
    assert await status("POST", "/deployments") == 200
