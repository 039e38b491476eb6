"""What a worker answers when the supervisor asks it (fabric ``Call``s)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from restate_server.query.worker_scans import WorkerScans
    from restate_server.server import Server
    from restate_server.workers.fabric import FabricEndpoint

# the read-view calls of /query (restate_server.query.scan_calls)
QUERY_CALLS = ("query_open", "query_next", "query_close")


def register_worker_calls(
    server: Server, fabric: FabricEndpoint, schema_ready: asyncio.Event
) -> None:
    def schema(payload: bytes) -> bytes:
        # the supervisor's registry changed (or it connected): take it before answering,
        # so the admin API answers only once every worker routes with it
        server.registry.adopt(payload)
        schema_ready.set()
        return b""

    async def ready(payload: bytes) -> bytes:
        await server.started.wait()
        return b""

    def metrics(payload: bytes) -> bytes:
        # this worker's families; the supervisor merges every worker's into one scrape
        node = server.metrics
        return msgspec.msgpack.encode(node.families() if node is not None else [])

    def storage(payload: bytes) -> bytes:
        # why the store takes no new work now (the disk is full), or nothing
        committer = server.committer
        reason = committer.unavailable if committer is not None else None
        return (reason or "").encode()

    fabric.on_call("schema", schema)
    fabric.on_call("storage", storage)
    fabric.on_call("ready", ready)
    fabric.on_call("metrics", metrics)
    register_query_calls(server, fabric)


def register_query_calls(server: Server, fabric: FabricEndpoint) -> None:
    """The read-view calls of /query: a worker's for its supervisor, a cluster node's
    for the other nodes (each serves the partitions it leads)."""
    for method in QUERY_CALLS:
        fabric.on_call(method, _query_call(server, method))


def _query_call(server: Server, method: str) -> Callable[[bytes], Awaitable[bytes]]:
    async def call(payload: bytes) -> bytes:
        scans = server.scans
        if scans is None:
            made = await asyncio.to_thread(_worker_scans, server)
            # another call may have made them meanwhile
            scans = server.scans = server.scans or made
        return await scans.handlers()[method](payload)

    return call


def _worker_scans(server: Server) -> WorkerScans:
    # imported at the first query (pyarrow and the tables), off the loop
    from restate_server.query.worker_scans import WorkerScans

    store, reads, invoker = server.store, server.durable_reads, server.invoker
    assert store is not None and reads is not None and invoker is not None
    assert server.partitions is not None
    return WorkerScans(
        lambda ranges: reads.read(lambda: store.snapshot(ranges), consistent=False),
        server.partitions.table,
        lambda: invoker.tasks.values(),
    )
