"""Group commit: many batches, from any partition, in one synced RocksDB write.

Batches are handed over from the event loop; a dedicated writer thread takes
everything queued since its last write, writes it as one atomic batch (fsynced
when sync writes are on) and reports back on the loop, in submission order.
While it writes, the loop keeps applying commands, so one fsync covers the
work of many requests.

When the disk is full (``StorageFull``) the writer keeps the batch that failed and
tries it again every ``FULL_RETRY_S`` until it is written: nothing in it or queued after
it is acknowledged before then, and the order stays. Meanwhile ``unavailable`` says why,
for the APIs to refuse new work with 503, and reads wait (a journal read now could miss
entries the partitions already hold in the batch that failed).

A written batch is readable in RocksDB a little before it is durable (see
``Store``). Readers that hand data to the outside world before the partition has
seen it committed (the invoker replaying a journal) read through :meth:`read`:
the writer thread runs such reads between batches, when everything written is
also synced.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from restate_server.storage.db import StorageFull, Store
from restate_server.storage.transaction import Writes

if TYPE_CHECKING:
    from restate_server.metrics.commit import CommitMetrics

log = logging.getLogger(__name__)

Callback = Callable[[], None]
T = TypeVar("T")

FULL_RETRY_S = 1.0


class Committer:
    def __init__(
        self,
        store: Store,
        loop: asyncio.AbstractEventLoop,
        metrics: CommitMetrics | None = None,
    ) -> None:
        self._store = store
        self._loop = loop
        # recorded on the loop, from figures the writer thread hands over with the callbacks
        self._metrics = metrics
        self._pending: list[tuple[Writes, Callback]] = []
        self._reads: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._failure: BaseException | None = None
        # why new work is refused (the disk is full), or None; written by the writer thread
        self.unavailable: str | None = None
        self._thread = threading.Thread(target=self._run, name="restate-committer", daemon=True)
        self._thread.start()
        self.batches_written = 0
        self.writes_merged = 0

    def submit(self, writes: Writes, on_durable: Callback) -> None:
        """Queue ``writes``; ``on_durable`` runs on the loop once they are durable."""
        if self._failure is not None:
            raise RuntimeError("storage failed earlier") from self._failure
        with self._cond:
            self._pending.append((writes, on_durable))
            if len(self._pending) == 1:
                self._cond.notify()

    def read(self, fn: Callable[[], T], *, consistent: bool = True) -> asyncio.Future[T]:
        """Run ``fn`` (a storage read) when every written batch is durable.

        The result (or exception) arrives on the loop. Reads queued while a batch is
        being synced run right after that sync, before the next batch is written.
        ``consistent=False``: a reader that only shows what is stored (a query) need not
        wait while the disk is full; it runs at once, on the loop.
        """
        future: asyncio.Future[T] = self._loop.create_future()
        if not consistent and self.unavailable is not None:
            try:
                future.set_result(fn())
            except Exception as exc:
                future.set_exception(exc)
            return future
        with self._cond:
            self._reads.append((fn, future))
            self._cond.notify()
        return future

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._reads and not self._closed:
                    self._cond.wait()
                if not self._pending and not self._reads and self._closed:
                    return
                work, self._pending = self._pending, []
                reads, self._reads = self._reads, []
            if reads:  # nothing written is unsynced at this point
                self._serve_reads(reads)
            if not work:
                continue
            started_ns = time.perf_counter_ns()
            try:
                try:
                    self._write(work)
                except StorageFull as exc:
                    if not self._wait_for_space(work, exc):
                        return  # closed while full: nothing of it was acknowledged
            except BaseException as exc:  # storage is broken: nothing may be acknowledged
                log.critical("RocksDB write failed: %s", exc)
                self._failure = exc
                self._loop.call_soon_threadsafe(self._fail, exc)
                return
            self.batches_written += 1
            self.writes_merged += len(work)
            callbacks = [cb for _, cb in work]
            if self._metrics is None:
                self._loop.call_soon_threadsafe(_run_all, callbacks)
            else:
                elapsed_ns = time.perf_counter_ns() - started_ns
                self._loop.call_soon_threadsafe(self._committed, callbacks, elapsed_ns, len(work))

    def _write(self, work: list[tuple[Writes, Callback]]) -> None:
        if len(work) == 1:
            self._store.write(work[0][0])
        else:
            self._store.write_many([w for w, _ in work])

    def _wait_for_space(self, work: list[tuple[Writes, Callback]], error: StorageFull) -> bool:
        """Try ``work`` again until the disk takes it; False if closed meanwhile."""
        self.unavailable = "the disk is full"  # the details (paths) stay in the log
        started = time.monotonic()
        log.error(
            "storage is full: %s. New work is refused with 503 until space is freed; "
            "%d batches wait, unacknowledged",
            error,
            len(work),
        )
        while True:
            with self._cond:
                if self._closed:
                    return False
                self._cond.wait(FULL_RETRY_S)
                if self._closed:
                    return False
            try:
                self._write(work)
            except StorageFull:
                continue
            self.unavailable = None
            log.warning(
                "storage takes writes again after %.1f s; the waiting batches are committed",
                time.monotonic() - started,
            )
            return True

    def _committed(self, callbacks: list[Callback], elapsed_ns: int, groups: int) -> None:
        """On the loop: record the batch, then run its callbacks."""
        assert self._metrics is not None
        self._metrics.committed(elapsed_ns, groups)
        _run_all(callbacks)

    def _serve_reads(self, reads: list[tuple[Callable[[], Any], asyncio.Future[Any]]]) -> None:
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        for fn, future in reads:
            try:
                results.append((future, fn(), None))
            except Exception as exc:
                results.append((future, None, exc))
        self._loop.call_soon_threadsafe(_deliver_reads, results)

    def _fail(self, exc: BaseException) -> None:
        raise SystemExit(f"fatal: storage write failed: {exc}")

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=10)


def _run_all(callbacks: list[Callback]) -> None:
    for callback in callbacks:
        try:
            callback()
        except Exception:
            log.exception("post-commit callback failed")


def _deliver_reads(results: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, exc in results:
        if future.done():  # the reader gave up (attempt aborted)
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)
