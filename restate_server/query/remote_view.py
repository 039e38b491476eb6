"""The supervisor's side of ``/query``: a read view whose partitions live in workers.

The supervisor plans and executes every query (one DataFusion, one result), and
reads each partition from the worker that leads it: ``WorkerViews`` opens the query's
view in every worker that leads a partition the plan scans (each takes its snapshot
at a durable instant of its own store), and ``RemoteView.partition_batches`` pulls a
partition scan page by page. The registry tables come from the supervisor's registry.
A worker that goes away during a query fails the query with a clear message; the
next query reads from the restarted worker.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa

from restate_server.partition.table import PartitionTable
from restate_server.query import scan_calls
from restate_server.query.catalog import TableDef
from restate_server.query.errors import QueryFailed
from restate_server.query.partition_scan import ScanRequest
from restate_server.query.read_view import RangesByPartition
from restate_server.query.scan_calls import CloseView, NextPage, OpenView, portable
from restate_server.workers.link import PeerLink

# a worker answers a page within this (a page is at most about 1 MiB of rows)
CALL_TIMEOUT_S = 30.0


class WorkerViews:
    """The supervisor's ``ViewMaker`` (see ``service.QueryService``)."""

    def __init__(
        self,
        partitions: PartitionTable,
        link_of: Callable[[int], PeerLink],
        registry: Any,
        server_version: str,
    ) -> None:
        self._partitions = partitions
        self._link_of = link_of
        self._registry = registry
        self._server_version = server_version
        self._queries = itertools.count(1)

    async def __call__(self, ranges: RangesByPartition) -> RemoteView:
        registry = self._registry
        view = RemoteView(
            next(self._queries),
            self._partitions,
            self._link_of,
            asyncio.get_running_loop(),
            deployments=list(registry.list_deployments()),
            services=list(registry.list_services()),
            server_version=self._server_version,
        )
        by_link: dict[PeerLink, dict[int, list[tuple[bytes, bytes]]]] = {}
        for partition_id, found in ranges.items():
            by_link.setdefault(self._link_of(partition_id), {})[partition_id] = found
        try:
            await asyncio.gather(*(view.open_in(link, found) for link, found in by_link.items()))
        except BaseException:
            view.release()
            raise
        return view


class RemoteView:
    """One query's view: built on the loop, scanned from the query thread."""

    def __init__(
        self,
        query: int,
        partitions: PartitionTable,
        link_of: Callable[[int], PeerLink],
        loop: asyncio.AbstractEventLoop,
        *,
        deployments: list[Any],
        services: list[Any],
        server_version: str,
    ) -> None:
        self.query = query
        self.partitions = partitions
        self.deployments = deployments
        self.services = services
        self.server_version = server_version
        self._link_of = link_of
        self._loop = loop
        self._opened: set[PeerLink] = set()
        self._cursors = itertools.count(1)

    # ---- on the loop

    async def open_in(self, link: PeerLink, ranges: dict[int, list[tuple[bytes, bytes]]]) -> None:
        self._opened.add(link)
        payload = scan_calls.encode(OpenView(self.query, ranges))
        await _call(link, scan_calls.OPEN, payload)

    async def _close_all(self) -> None:
        payload = scan_calls.encode(CloseView(self.query))
        opened, self._opened = self._opened, set()
        await asyncio.gather(
            *(_call(link, scan_calls.CLOSE, payload) for link in opened), return_exceptions=True
        )

    # ---- on the query thread (QueryView)

    def partition_batches(
        self, table: TableDef, partition_id: int, request: ScanRequest
    ) -> Iterator[pa.RecordBatch]:
        link = self._link_of(partition_id)
        if link not in self._opened:  # a partition the plan did not name: opened now
            self._wait(self.open_in(link, {partition_id: []}))
        ask = NextPage(self.query, next(self._cursors), table.name, partition_id, portable(request))
        payload = scan_calls.encode(ask)
        while True:
            raw = self._wait(_call(link, scan_calls.NEXT, payload))
            page = scan_calls.page_decoder.decode(raw)
            if page.stream:
                yield from pa.ipc.open_stream(page.stream)
            if page.done:
                return

    def release(self) -> None:
        """Release the workers' snapshots (without waiting: the query is answered)."""
        if self._opened and not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._close_all(), self._loop)

    def _wait(self, call: Any) -> Any:
        try:
            on_thread = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_thread = False
        if on_thread:  # pragma: no cover - scans run on the query thread only
            raise RuntimeError("a remote scan cannot wait on the event loop")
        return asyncio.run_coroutine_threadsafe(call, self._loop).result(CALL_TIMEOUT_S + 1)


async def _call(link: PeerLink, method: str, payload: bytes) -> bytes:
    try:
        return await asyncio.wait_for(link.call(method, payload), CALL_TIMEOUT_S)
    except (ConnectionError, TimeoutError) as exc:
        raise QueryFailed(
            503,
            f"{link.name} is not available ({exc or 'no answer'}); it leads some of the "
            "partitions this query reads: try again once it is back",
        ) from None
    except Exception as exc:  # a RemoteError: the worker could not serve it
        raise QueryFailed(500, f"{link.name} failed to serve the query: {exc}") from None
