"""Commit a partition's groups to its log in the engine, then to the local store.

The cluster's stand-in for ``storage.committer.Committer``, with the same ``submit``:
a group's callbacks (which let the partition perform its actions) run only once the
engine holds the group replicated. The local RocksDB is written after that, without
fsync: the log is the durable copy, and a node that lost its unsynced tail replays it
from the log (``catch_up``). Groups queued while an append is in flight leave together
in the next record, as the local committer merges them into one fsync.

A fenced append (another node leads the partition now) stops the committer for good:
the groups it holds are not acknowledged, and ``on_fenced`` tells the owner to stop
the partition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from restate_server.cluster.log_records import CommitRecord
from restate_server.cluster.partition_log import EngineUnavailable, Fenced, PartitionLog
from restate_server.storage import keys
from restate_server.storage.db import Store
from restate_server.storage.transaction import Writes

log = logging.getLogger(__name__)

Callback = Callable[[], None]

LOG_SEQUENCE = "log_sequence"


def log_sequence_key(partition_id: int) -> bytes:
    """Where a partition's store records the last log sequence its state includes."""
    return keys.fsm_variable(partition_id, LOG_SEQUENCE)


def applied_sequence(store: Store, partition_id: int) -> int:
    raw = store.get(log_sequence_key(partition_id))
    return keys.decode_u64(raw) if raw else 0


class LogCommitter:
    def __init__(
        self,
        partition_log: PartitionLog,
        store: Store,
        epoch: int,
        on_fenced: Callable[[Fenced], None],
        on_written: Callable[[int], None] | None = None,
    ) -> None:
        self._log = partition_log
        # told each record's sequence once its writes are in the store (snapshots)
        self._on_written = on_written
        self._store = store
        self._epoch = epoch
        self._on_fenced = on_fenced
        self._sequence_key = log_sequence_key(partition_log.partition_id)
        self._pending: list[tuple[Writes, Callback]] = []
        self._task: asyncio.Task[None] | None = None
        self._fenced: Fenced | None = None
        # why new work is refused (the engine takes no writes), or None
        self.unavailable: str | None = None
        self.records_written = 0

    def submit(self, writes: Writes, on_durable: Callback) -> None:
        """Queue ``writes``; ``on_durable`` runs once the engine holds them replicated."""
        if self._fenced is not None:
            raise RuntimeError("this node no longer leads the partition") from self._fenced
        self._pending.append((writes, on_durable))
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"log-committer-{self._log.partition_id}"
            )

    async def _run(self) -> None:
        try:
            while self._pending:
                work, self._pending = self._pending, []
                merged: Writes = {}
                for writes, _ in work:
                    merged.update(writes)  # in order: a later group's write wins
                sequence = await self._append(merged)
                if sequence is None:
                    return
                merged[self._sequence_key] = keys.encode_u64(sequence)
                self._store.write(merged)
                self.records_written += 1
                if self._on_written is not None:
                    self._on_written(sequence)
                for _, callback in work:
                    try:
                        callback()
                    except Exception:
                        log.exception("post-commit callback failed")
        finally:
            self._task = None

    async def _append(self, writes: Writes) -> int | None:
        """The record's sequence; None once fenced (nothing of it is stored)."""
        record = CommitRecord(self._epoch, writes)
        while True:
            try:
                sequence = await self._log.append(record)
            except EngineUnavailable as exc:
                # keep the groups, unacknowledged, and keep trying: the lease keeper
                # stops the partition if this node cannot hold it meanwhile
                self.unavailable = "the cluster's engine takes no writes"
                log.warning("%s; retrying", exc)
                continue
            except Fenced as exc:
                self._fenced = exc
                self._pending.clear()
                log.warning("%s: another node leads it now", exc)
                self._on_fenced(exc)
                return None
            except Exception as exc:  # unforeseen: the groups are kept all the same
                self.unavailable = "the cluster's engine takes no writes"
                log.warning(
                    "appending to partition %s failed (%r); retrying", self._log.partition_id, exc
                )
                await asyncio.sleep(0.2)
                continue
            self.unavailable = None
            return sequence

    async def wait_idle(self) -> None:
        """Until everything submitted so far is committed (or the committer is fenced)."""
        while self._task is not None:
            await asyncio.shield(self._task)
