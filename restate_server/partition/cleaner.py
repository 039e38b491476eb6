"""Removes completed invocations whose retention has expired.

Every ``worker.cleanup-interval`` it scans the invocation statuses (read-only)
and asks the owning partition to purge the expired ones; the partition checks
the expiry again when it applies the command, so a racing re-submission is safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from restate_server.partition.commands import PurgeInvocation
from restate_server.partition.router import Partitions
from restate_server.storage import keys
from restate_server.storage.db import Store
from restate_server.storage.records import COMPLETED, decode_status

log = logging.getLogger(__name__)

_YIELD_EVERY = 500


class Cleaner:
    def __init__(self, store: Store, partitions: Partitions, interval_ms: int) -> None:
        self._store = store
        self._partitions = partitions
        self._interval_s = max(0.05, interval_ms / 1000)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="cleaner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.sweep()
            except Exception:
                log.exception("cleanup sweep failed")

    async def sweep(self) -> int:
        """Submit purges for every expired completed invocation; returns how many."""
        now = int(time.time() * 1000)
        submitted = 0
        for count, (key, raw) in enumerate(self._store.scan_prefix(keys.INVOCATION_STATUS)):
            if count % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)
            status = decode_status(raw)
            if status.status != COMPLETED:
                continue
            expired = status.expires_at is not None and status.expires_at <= now
            journal_expired = (
                status.journal_expires_at is not None
                and status.journal_expires_at <= now
                and status.journal_length > 0
            )
            if expired or journal_expired:
                invocation_id = key[1:]
                self._partitions.for_invocation(invocation_id).submit(
                    PurgeInvocation(invocation_id, only_if_expired=True)
                )
                submitted += 1
        return submitted
