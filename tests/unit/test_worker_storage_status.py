"""The supervisor's view of its workers' stores: an admin write is refused while any
worker's disk is full (no sockets: links answer what a worker's ``storage`` call does)."""

from __future__ import annotations

import asyncio

from restate_server.workers.storage_status import WorkerStorage


class FakeLink:
    def __init__(self, name: str, reason: str | None, connected: bool = True) -> None:
        self.name = name
        self.reason = reason
        self.connected = connected

    def call(self, method: str, payload: bytes = b"") -> asyncio.Future[bytes]:
        assert method == "storage"
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        future.set_result((self.reason or "").encode())
        return future


async def test_a_full_disk_in_any_worker_makes_the_node_unavailable() -> None:
    links = [FakeLink("worker-0", None), FakeLink("worker-1", None)]
    storage = WorkerStorage(lambda: links)
    await storage.refresh()
    assert storage.unavailable is None
    links[1].reason = "the disk is full"
    await storage.refresh()
    assert storage.unavailable == "the disk is full"
    links[1].reason = None
    await storage.refresh()
    assert storage.unavailable is None


async def test_a_worker_that_is_away_does_not_count() -> None:
    links = [FakeLink("worker-0", None), FakeLink("worker-1", "the disk is full", False)]
    storage = WorkerStorage(lambda: links)
    await storage.refresh()
    assert storage.unavailable is None
