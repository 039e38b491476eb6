"""Group commit: many batches, from any partition, in one synced RocksDB write.

Batches are handed over from the event loop; a dedicated writer thread takes
everything queued since its last write, writes it as one atomic batch (fsynced
when sync writes are on) and reports back on the loop, in submission order.
While it writes, the loop keeps applying commands, so one fsync covers the
work of many requests.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

from restate_server.storage.db import Store
from restate_server.storage.transaction import Writes

log = logging.getLogger(__name__)

Callback = Callable[[], None]


class Committer:
    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop) -> None:
        self._store = store
        self._loop = loop
        self._pending: list[tuple[Writes, Callback]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._failure: BaseException | None = None
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

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending and self._closed:
                    return
                work, self._pending = self._pending, []
            try:
                if len(work) == 1:
                    self._store.write(work[0][0])
                else:
                    self._store.write_many([w for w, _ in work])
            except BaseException as exc:  # storage is broken: nothing may be acknowledged
                log.critical("RocksDB write failed: %s", exc)
                self._failure = exc
                self._loop.call_soon_threadsafe(self._fail, exc)
                return
            self.batches_written += 1
            self.writes_merged += len(work)
            callbacks = [cb for _, cb in work]
            self._loop.call_soon_threadsafe(_run_all, callbacks)

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
