"""``POST /query``: the admin route, the query thread, the read view of each query.

The route runs on the event loop and stays light: it reads the request and hands the
statement to the query thread. There DataFusion plans it (DataFusion and pyarrow are
imported by the first query, so a server nobody queries never loads them); the plan
says which key ranges the query scans. The thread then asks the loop for a read view:
a storage snapshot with iterators over those ranges, opened on the committer's thread
between two synced batches (a durable instant, the same for every partition), plus
copies of the invoker's and the registry's in-memory state. Execution and encoding
happen on the query thread again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from restate_server.admin.errors import json_response
from restate_server.http_server import Request, Response
from restate_server.partition.table import PartitionTable
from restate_server.query import in_flight
from restate_server.query.errors import QueryFailed
from restate_server.query.read_view import QueryView, RangesByPartition, ReadView, flat_ranges
from restate_server.query.request import QueryRequest, read_query_request
from restate_server.storage.snapshot import Range, StoreSnapshot

if TYPE_CHECKING:
    from restate_server.query.engine import QueryEngine

log = logging.getLogger(__name__)

DEFAULT_MEMORY_LIMIT = 128 * 1024 * 1024
JSON_CONTENT_TYPE = "application/json"
ARROW_CONTENT_TYPE = "application/vnd.apache.arrow.stream"
# how long the query thread waits for its snapshot (the committer may be syncing)
SNAPSHOT_TIMEOUT_S = 30.0

# (ranges) -> a snapshot with iterators over them, taken at a durable instant
SnapshotTaker = Callable[[list[Range]], Awaitable[StoreSnapshot]]
# (ranges by partition) -> the query's read view; called on the loop
ViewMaker = Callable[[RangesByPartition], Awaitable[QueryView]]


def local_views(
    snapshot: SnapshotTaker,
    partitions: PartitionTable,
    invoker_tasks: Callable[[], Any],
    registry: Any,
    server_version: str,
) -> ViewMaker:
    """Views of the partitions of this process: its store's snapshot, copies of its
    invoker's and registry's in-memory state."""

    async def open_view(ranges: RangesByPartition) -> QueryView:
        taken = await snapshot(flat_ranges(ranges))
        return ReadView(
            taken,
            partitions,
            invoker=in_flight.capture(invoker_tasks()),
            deployments=list(registry.list_deployments()),
            services=list(registry.list_services()),
            server_version=server_version,
        )

    return open_view


class QueryService:
    """The ``AdminState.query`` handler: ``await service(request, api_version)``."""

    def __init__(
        self,
        *,
        open_view: ViewMaker,
        partitions: PartitionTable,
        memory_limit: int = DEFAULT_MEMORY_LIMIT,
        batch_rows: int = 1024,
    ) -> None:
        self._make_view = open_view
        self.partitions = partitions
        self._memory_limit = memory_limit
        self._batch_rows = batch_rows
        # one query at a time: bounded memory, and the engine's sources are rebound per query
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="restate-query")
        self._engine: QueryEngine | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # queries handed to the thread (awaited at shutdown: they read the store)
        self._running: set[asyncio.Future[bytes]] = set()

    async def __call__(self, request: Request, version: object = None) -> Response:
        query = await read_query_request(request)
        self._loop = loop = asyncio.get_running_loop()
        running = loop.run_in_executor(self._executor, self._run, query)
        self._running.add(running)
        running.add_done_callback(self._running.discard)
        try:
            body = await asyncio.shield(running)
        except QueryFailed as failed:
            return json_response({"message": failed.message}, failed.status)
        content_type = JSON_CONTENT_TYPE if query.json else ARROW_CONTENT_TYPE
        return Response(200, body, {"content-type": content_type})

    # ---- on the query thread

    def _run(self, query: QueryRequest) -> bytes:
        engine = self._engine
        if engine is None:
            from restate_server.query.warmup import read_shared_libraries

            read_shared_libraries()
            from restate_server.query.engine import QueryEngine

            engine = self._engine = QueryEngine(self._memory_limit, self._batch_rows)
        from restate_server.query.arrow_format import ArrowStream
        from restate_server.query.json_format import JsonRows

        writer: Any = JsonRows if query.json else ArrowStream
        return engine.execute(query.sql, _Opener(self), writer)

    def open_view(self, ranges: RangesByPartition) -> QueryView:
        """The read view of the running query (``ViewOpener``), made on the loop."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(self._make_view(ranges), self._loop)
        return future.result(SNAPSHOT_TIMEOUT_S)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop taking queries; stop the running one and wait for it (it holds a
        snapshot of the store, which must be released before the store closes)."""
        if self._engine is not None:
            self._engine.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._running:
            await asyncio.wait(set(self._running), timeout=timeout_s)


class _Opener:
    """The ``ViewOpener`` the engine calls, on the query thread, once it has planned."""

    def __init__(self, service: QueryService) -> None:
        self.partitions = service.partitions
        self._service = service

    def __call__(self, ranges: RangesByPartition) -> QueryView:
        return self._service.open_view(ranges)
