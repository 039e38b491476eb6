"""A worker's side of ``/query``: read views of its partitions, scanned page by page.

The supervisor plans the query and runs DataFusion; the rows of a partition come from
the worker that leads it. ``query_open`` takes the worker's snapshot (at a durable
instant of its store, with iterators over the ranges the plan reads) and copies its
invoker's state; ``query_next`` runs one partition scan on the worker's scan thread
until a page is full and sends it as an Arrow IPC stream; ``query_close`` releases the
snapshot. A view the supervisor forgot (it died mid-query) is released after
``IDLE_VIEW_S`` without a call.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from restate_server.partition.table import PartitionTable
from restate_server.query import in_flight, scan_calls
from restate_server.query.catalog import TABLES
from restate_server.query.read_view import ReadView
from restate_server.query.scan_calls import NextPage, Page
from restate_server.storage.snapshot import Range, StoreSnapshot

log = logging.getLogger(__name__)

# a page holds batches up to about this many bytes (one fabric frame, one round trip)
PAGE_BYTES = 1 << 20
IDLE_VIEW_S = 120.0


@dataclass
class _OpenView:
    view: ReadView
    used_at: float
    # cursor -> the partition scan's batches still to send
    scans: dict[int, Iterator[pa.RecordBatch]] = field(default_factory=dict)


class WorkerScans:
    """The worker's ``query_*`` call handlers."""

    def __init__(
        self,
        snapshot: Callable[[list[Range]], Awaitable[StoreSnapshot]],
        partitions: PartitionTable,
        invoker_tasks: Callable[[], Any],
    ) -> None:
        self._snapshot = snapshot
        self._partitions = partitions
        self._invoker_tasks = invoker_tasks
        self._views: dict[int, _OpenView] = {}
        # scans and releases in arrival order, off the event loop
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="restate-scan")

    def handlers(self) -> dict[str, Callable[[bytes], Awaitable[bytes]]]:
        return {
            scan_calls.OPEN: self.open,
            scan_calls.NEXT: self.next_page,
            scan_calls.CLOSE: self.close_view,
        }

    async def open(self, payload: bytes) -> bytes:
        request = scan_calls.open_decoder.decode(payload)
        self._release_idle()
        ranges = [r for found in request.ranges.values() for r in found]
        snapshot = await self._snapshot(ranges)
        view = ReadView(
            snapshot, self._partitions, invoker=in_flight.capture(self._invoker_tasks())
        )
        previous = self._views.pop(request.query, None)
        if previous is not None:
            self._release(previous)
        self._views[request.query] = _OpenView(view, time.monotonic())
        return b""

    async def next_page(self, payload: bytes) -> bytes:
        request = scan_calls.next_decoder.decode(payload)
        opened = self._views.get(request.query)
        if opened is None:
            raise LookupError(f"query {request.query} has no open view here")
        opened.used_at = time.monotonic()
        loop = asyncio.get_running_loop()
        page = await loop.run_in_executor(self._executor, _fill_page, opened, request)
        return scan_calls.encode(page)

    async def close_view(self, payload: bytes) -> bytes:
        request = scan_calls.close_decoder.decode(payload)
        opened = self._views.pop(request.query, None)
        if opened is not None:
            await asyncio.wrap_future(self._release(opened))
        return b""

    async def close(self) -> None:
        """Release every view (before the store closes) and stop the scan thread."""
        views, self._views = self._views, {}
        releases = [asyncio.wrap_future(self._release(opened)) for opened in views.values()]
        if releases:
            await asyncio.gather(*releases, return_exceptions=True)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _release(self, opened: _OpenView) -> Any:
        # on the scan thread: after any page still being filled from it
        return self._executor.submit(_release_view, opened)

    def _release_idle(self) -> None:
        now = time.monotonic()
        for query, opened in list(self._views.items()):
            if now - opened.used_at > IDLE_VIEW_S:
                log.warning("query %s: releasing a read view nobody read for a while", query)
                del self._views[query]
                self._release(opened)


def _fill_page(opened: _OpenView, request: NextPage) -> Page:
    batches = opened.scans.get(request.cursor)
    if batches is None:
        table = TABLES[request.table]
        batches = opened.view.partition_batches(table, request.partition_id, request.request)
        opened.scans[request.cursor] = batches
    page: list[pa.RecordBatch] = []
    size = 0
    done = False
    while size < PAGE_BYTES:
        batch = next(batches, None)
        if batch is None:
            done = True
            break
        if not batch.num_rows:
            continue
        if page and batch.schema != page[0].schema:
            # one IPC stream has one schema: this batch starts the next page
            opened.scans[request.cursor] = itertools.chain([batch], batches)
            break
        page.append(batch)
        size += batch.nbytes
    if done:
        del opened.scans[request.cursor]
    return Page(_ipc_stream(page), done)


def _ipc_stream(batches: list[pa.RecordBatch]) -> bytes:
    if not batches:
        return b""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batches[0].schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return sink.getvalue().to_pybytes()  # type: ignore[no-any-return]


def _release_view(opened: _OpenView) -> None:
    opened.scans.clear()
    opened.view.release()
