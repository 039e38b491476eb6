"""Partition snapshots in the engine, and the log purged below them.

A snapshot is a partition dump (``partition_dump``) at log record S, stored in the
snapshot stream as chunks on a subject of its own, then named by a head message on the
partition's head subject. The head is written with the subject's expected last
sequence, so heads only ever move forward: a writer whose S is not above the current
head's (a deposed leader that snapshotted late) loses, and removes its own chunks.
Once its head is in, the winner removes the chunks of the snapshot it replaced and
purges the partition's log below S. Record S itself stays: the log's fence compares
against the partition's last record, which must survive.

A new leader whose store is behind the latest snapshot restores it first and replays
the log from S on (``restore_latest``). The chunks are read by sequence with direct
gets, which need no consumer (the engine cannot create consumers while one of its
servers is down).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Iterator

import msgspec
from nats.js.api import Header
from nats.js.errors import APIError, NotFoundError

from restate_server.cluster.engine import Engine, retrying
from restate_server.cluster.log_committer import applied_sequence
from restate_server.cluster.names import snapshot_epoch
from restate_server.cluster.partition_dump import decode_dump, dump_partition, restore_partition
from restate_server.cluster.partition_log import WRONG_LAST_SEQUENCE
from restate_server.partition.table import PartitionTable
from restate_server.storage.db import Store
from restate_server.storage.partition_ranges import partition_key_ranges
from restate_server.storage.snapshot import StoreSnapshot

log = logging.getLogger(__name__)

# below the engine's default max payload (1 MiB)
CHUNK_BYTES = 256 * 1024


class SnapshotHead(msgspec.Struct, array_like=True):
    """The latest snapshot of a partition: where its chunks are and what they hold."""

    partition_id: int
    sequence: int  # the last log record the snapshot includes
    epoch: int  # of the leader that wrote it
    data_subject: str
    first_chunk: int  # stream sequence of its first chunk
    chunks: int
    size: int
    crc32: int


class SnapshotGone(Exception):
    """The snapshot's chunks were removed (a newer snapshot replaced it): read the head
    again."""


_encoder = msgspec.msgpack.Encoder()
_head_decoder = msgspec.msgpack.Decoder(SnapshotHead)


class SnapshotStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._names = engine.names
        self._stream = engine.names.snapshots_stream

    async def latest(self, partition_id: int) -> tuple[SnapshotHead, int] | None:
        """The partition's head and its stream sequence; None before the first one."""
        subject = self._names.snapshot_head_subject(partition_id)
        try:
            message = await self._engine.js.get_last_msg(self._stream, subject)
        except NotFoundError:
            return None
        return _head_decoder.decode(message.data or b""), message.seq or 0

    async def save(self, partition_id: int, epoch: int, sequence: int, blob: bytes) -> bool:
        """Store ``blob`` as the partition's snapshot at record ``sequence`` and purge the
        log below it; False when a snapshot at or after ``sequence`` is there already."""
        js = self._engine.js
        data_subject = self._names.snapshot_data_subject(partition_id, epoch, sequence)
        first = 0
        chunks = 0
        try:
            for offset in range(0, max(len(blob), 1), CHUNK_BYTES):
                piece = blob[offset : offset + CHUNK_BYTES]
                # a resend after a lost acknowledgement is a duplicate, not a second chunk
                headers = {Header.MSG_ID.value: f"{data_subject}:{chunks}"}
                ack = await retrying(
                    lambda piece=piece, headers=headers: js.publish(
                        data_subject, piece, stream=self._stream, headers=headers
                    )
                )
                first = first or ack.seq
                chunks += 1
            head = SnapshotHead(
                partition_id, sequence, epoch, data_subject, first, chunks, len(blob),
                zlib.crc32(blob),
            )  # fmt: skip
            won, replaced = await self._advance_head(head)
        except BaseException:
            await self._drop_unless_named(head_of=partition_id, data_subject=data_subject)
            raise
        if not won:
            await self._drop(data_subject)
            return False
        if replaced is not None:
            await self._drop(replaced.data_subject)
        await self._drop_orphans(partition_id, epoch, data_subject)
        # the log below the snapshot is in it now; record ``sequence`` stays (the fence)
        await retrying(
            lambda: js.purge_stream(
                self._names.log_stream,
                subject=self._names.partition_subject(partition_id),
                seq=sequence,
            )
        )
        return True

    async def load(self, head: SnapshotHead) -> bytes:
        """The snapshot's blob, checked against its head."""
        js = self._engine.js
        parts: list[bytes] = []
        sequence = head.first_chunk
        for _ in range(head.chunks):
            try:
                message = await retrying(
                    lambda at=sequence: js.get_msg(
                        self._stream, seq=at, subject=head.data_subject, next=True
                    )
                )
            except NotFoundError:
                raise SnapshotGone(head.data_subject) from None
            if message.subject != head.data_subject:
                raise SnapshotGone(head.data_subject)
            parts.append(message.data or b"")
            sequence = (message.seq or 0) + 1
        blob = b"".join(parts)
        if len(blob) != head.size or zlib.crc32(blob) != head.crc32:
            raise SnapshotGone(f"{head.data_subject}: incomplete or damaged")
        return blob

    async def _advance_head(self, head: SnapshotHead) -> tuple[bool, SnapshotHead | None]:
        """Write ``head`` if it is newer than the current one: whether it was, and the
        head it replaced (None: the first)."""
        subject = self._names.snapshot_head_subject(head.partition_id)
        payload = _encoder.encode(head)
        replaced: tuple[SnapshotHead, int] | None = None
        while True:
            current = await retrying(lambda: self.latest(head.partition_id))
            if current is not None and current[0].data_subject == head.data_subject:
                break  # in already: an attempt whose answer was lost went through
            if current is not None and current[0].sequence >= head.sequence:
                return False, None
            replaced = current
            expected = str(current[1] if current is not None else 0)
            try:
                await retrying(
                    lambda expected=expected: self._engine.js.publish(
                        subject,
                        payload,
                        stream=self._stream,
                        headers={Header.EXPECTED_LAST_SUBJECT_SEQUENCE.value: expected},
                    )
                )
                break
            except APIError as exc:
                if exc.err_code not in WRONG_LAST_SEQUENCE:
                    raise
                # another head came in meanwhile (or this one did): compare again
        if replaced is None:
            return True, None
        with _quietly(f"purging old heads of partition {head.partition_id}"):
            # only the latest head is needed
            await self._engine.js.purge_stream(self._stream, subject=subject, seq=replaced[1] + 1)
        return True, replaced[0]

    async def _drop_orphans(self, partition_id: int, epoch: int, kept: str) -> None:
        """Remove chunks no head will name: uploads of this epoch or an earlier one (a
        leader that died mid-upload, or a deposed one) can no longer win, because every
        record they could include is below this snapshot's. A later epoch's upload may
        be under way and stays."""
        every = self._names.snapshot_data_subjects(partition_id)
        with _quietly(f"listing the snapshot chunks of partition {partition_id}"):
            info = await self._engine.js.stream_info(self._stream, subjects_filter=every)
            for subject in info.state.subjects or {}:
                if subject != kept and snapshot_epoch(subject) <= epoch:
                    await self._drop(subject)

    async def _drop_unless_named(self, head_of: int, data_subject: str) -> None:
        """After a failed save: remove its chunks unless the head names them (its write
        went through but its answer was lost). Unsure (the engine does not answer): leave
        them; the partition's next stored snapshot removes them (``_drop_orphans``)."""
        with _quietly(f"checking the head of partition {head_of}"):
            found = await self.latest(head_of)
            if found is None or found[0].data_subject != data_subject:
                await self._drop(data_subject)

    async def _drop(self, data_subject: str) -> None:
        with _quietly(f"removing snapshot chunks {data_subject}"):
            await self._engine.js.purge_stream(self._stream, subject=data_subject)


async def restore_latest(
    snapshots: SnapshotStore, store: Store, table: PartitionTable, partition_id: int
) -> int | None:
    """Restore the partition's latest snapshot into ``store`` if the store is behind it;
    the snapshot's record sequence, or None when the store was as far already."""
    for _ in range(5):
        found = await retrying(lambda: snapshots.latest(partition_id))
        if found is None or found[0].sequence <= applied_sequence(store, partition_id):
            return None
        head = found[0]
        try:
            blob = await snapshots.load(head)
        except SnapshotGone:
            continue  # replaced while being read: take the newer one
        # off the loop: it reads and rewrites the partition's whole key ranges
        dump = await asyncio.to_thread(decode_dump, blob)
        await asyncio.to_thread(restore_partition, store, table, dump)
        log.info("partition %s: restored the snapshot at record %s", partition_id, head.sequence)
        return head.sequence
    raise RuntimeError(f"partition {partition_id}: could not read a snapshot that stays put")


class Snapshotter:
    """A leader's snapshot policy for one partition: after every ``every`` records it
    commits, a snapshot of the store at that record is saved in the background (one at
    a time; a failed one is logged and the next interval tries again)."""

    def __init__(
        self,
        snapshots: SnapshotStore,
        store: Store,
        table: PartitionTable,
        partition_id: int,
        epoch: int,
        every: int,
    ) -> None:
        self._snapshots = snapshots
        self._store = store
        self._table = table
        self._partition_id = partition_id
        self._epoch = epoch
        self._every = every
        self._ranges = partition_key_ranges(table, partition_id)
        self._since = 0
        self._task: asyncio.Task[None] | None = None
        self.saved: list[int] = []  # sequences of the snapshots this leader stored

    def written(self, sequence: int) -> None:
        """Record ``sequence`` is in the store now (called right after its write)."""
        self._since += 1
        if self._since < self._every or self._task is not None:
            return
        self._since = 0
        # the instant: the store holds exactly the records up to ``sequence``
        taken = self._store.snapshot(self._ranges)
        self._task = asyncio.get_running_loop().create_task(
            self._save(taken, sequence), name=f"snapshot-{self._partition_id}"
        )

    async def _save(self, taken: StoreSnapshot, sequence: int) -> None:
        try:
            try:
                blob = await asyncio.to_thread(
                    dump_partition, taken, self._table, self._partition_id, sequence
                )
            finally:
                taken.release()
            if await self._snapshots.save(self._partition_id, self._epoch, sequence, blob):
                self.saved.append(sequence)
                log.info(
                    "partition %s: snapshot at record %s (%d bytes); log purged below it",
                    self._partition_id,
                    sequence,
                    len(blob),
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("partition %s: snapshot failed: %r", self._partition_id, exc)
        finally:
            self._task = None

    async def wait_idle(self) -> None:
        """Until the snapshot being saved (if any) is stored or has failed."""
        task = self._task
        if task is not None:
            await asyncio.shield(task)

    async def close(self) -> None:
        task = self._task
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.contextmanager
def _quietly(what: str) -> Iterator[None]:
    """Log and swallow an error of a clean-up step (a later snapshot tidies up)."""
    try:
        yield
    except Exception as exc:
        log.warning("%s failed: %r", what, exc)
