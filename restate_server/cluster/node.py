"""This node's part in a cluster: the engine connection, its leases and logs.

At start the node connects to the engine, creates the cluster's objects if it is the
first, reads the partition count and the registry from the engine, then takes the
partitions. Taking one means: hold its lease, fence its log (a record no earlier leader
can write past), bring the local store up to the end of the log, and commit from then
on through a ``LogCommitter``. A partition whose lease another node holds is waited
for: this node is a standby until that lease runs out.

This step of cluster mode (docs/cluster.md, "Steps") has one node lead every
partition; a lost lease or a fenced log stops the node, which is what lets another one
take over safely. Spreading partitions over several live nodes comes next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from restate_server.cluster.catch_up import catch_up
from restate_server.cluster.engine import Engine, Layout
from restate_server.cluster.leases import PartitionLease
from restate_server.cluster.log_committer import LogCommitter, log_sequence_key
from restate_server.cluster.log_records import FenceRecord
from restate_server.cluster.partition_log import Fenced, PartitionLog
from restate_server.storage import keys
from restate_server.storage.db import Store

log = logging.getLogger(__name__)

PARTITION_COUNT_KEY = "partitions"
SCHEMA_KEY = "schema"
STANDBY_POLL_S = 0.25


class EngineMetadataStore:
    """The registry's store in cluster mode: the engine's registry bucket.

    ``SchemaRegistry`` saves synchronously; the bytes are kept here and written to the
    engine by ``publish``, which the admin API awaits before it answers a change."""

    def __init__(self, layout: Layout, data: bytes | None, revision: int) -> None:
        self._layout = layout
        self._data = data
        self._revision = revision
        self._published = data

    def load_schema(self) -> bytes | None:
        return self._data

    def save_schema(self, data: bytes) -> None:
        self._data = data

    async def publish(self) -> None:
        data = self._data
        if data is None or data == self._published:
            return
        registry = self._layout.registry
        if self._revision:
            self._revision = await registry.update(SCHEMA_KEY, data, last=self._revision)
        else:
            self._revision = await registry.create(SCHEMA_KEY, data)
        self._published = data


class ClusterNode:
    def __init__(self, engine: Engine, layout: Layout, node_name: str, options: Any) -> None:
        self.engine = engine
        self.layout = layout
        self.node_name = node_name
        self._options = options
        self.leases: dict[int, PartitionLease] = {}
        self.committers: dict[int, LogCommitter] = {}
        self._keepers: list[asyncio.Task[None]] = []
        self.metadata: EngineMetadataStore | None = None

    @classmethod
    async def connect(cls, config: Any) -> ClusterNode:
        options = config.py.cluster
        node_name = config.node_name or socket.gethostname()
        engine = await Engine.connect(options.engine_urls, config.cluster_name, node_name)
        try:
            layout = await engine.ensure_layout(
                options.replication_factor, options.lease_duration_ms / 1000
            )
        except BaseException:
            await engine.close()
            raise
        return cls(engine, layout, node_name, options)

    async def partition_count(self, default: int) -> int:
        """Fixed when the cluster is first created; a later node's default is ignored."""
        registry = self.layout.registry
        with contextlib.suppress(KeyWrongLastSequenceError):  # set by an earlier node
            await registry.create(PARTITION_COUNT_KEY, str(default).encode())
        entry = await registry.get(PARTITION_COUNT_KEY)
        return int((entry.value or b"0").decode())

    async def registry_store(self) -> EngineMetadataStore:
        try:
            entry = await self.layout.registry.get(SCHEMA_KEY)
            data, revision = entry.value, entry.revision or 0
        except KeyNotFoundError:
            data, revision = None, 0
        self.metadata = EngineMetadataStore(self.layout, data, revision)
        return self.metadata

    async def lead(self, partition_id: int, store: Store, on_lost: Callable[[str], None]) -> None:
        """Take ``partition_id`` (waiting while another node holds it) and make its
        store current; its committer is in ``committers`` afterwards."""
        options = self._options
        ttl_s = options.lease_duration_ms / 1000
        lease = PartitionLease(self.layout.leases, partition_id, self.node_name, ttl_s)
        waited = False
        while not await lease.acquire():
            if not waited:
                log.info("partition %s is led by another node: waiting", partition_id)
                waited = True
            await asyncio.sleep(STANDBY_POLL_S)
        partition_log = PartitionLog(
            self.engine,
            partition_id,
            last_sequence=0,
            writer=f"{self.node_name}:{lease.epoch}",
            commit_timeout_s=options.commit_timeout_ms / 1000,
        )
        while True:
            tail = await PartitionLog.tail(self.engine, partition_id)
            await catch_up(partition_log, store, tail)
            try:
                await partition_log.append(FenceRecord(lease.epoch, self.node_name))
                break
            except Fenced:
                continue  # the old leader wrote once more: replay that too, then fence
        # the fence record itself is part of the store's state from here on
        sequence = keys.encode_u64(partition_log.last_sequence)
        store.write({log_sequence_key(partition_id): sequence})

        def fenced(exc: Fenced) -> None:
            on_lost(f"partition {partition_id}: {exc}")

        self.leases[partition_id] = lease
        self.committers[partition_id] = LogCommitter(partition_log, store, lease.epoch, fenced)
        self._keepers.append(
            asyncio.get_running_loop().create_task(
                lease.keep(lambda: on_lost(f"partition {partition_id}: lease lost")),
                name=f"lease-{partition_id}",
            )
        )
        if waited:
            log.info("partition %s taken over (epoch %s)", partition_id, lease.epoch)

    @property
    def unavailable(self) -> str | None:
        for committer in self.committers.values():
            if committer.unavailable:
                return committer.unavailable
        return None

    def read(self, fn: Callable[[], Any], *, consistent: bool = True) -> asyncio.Future[Any]:
        """A storage read: in cluster mode the store holds only replicated writes."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        try:
            future.set_result(fn())
        except Exception as exc:
            future.set_exception(exc)
        return future

    async def wait_idle(self) -> None:
        for committer in self.committers.values():
            await committer.wait_idle()

    async def close(self, release: bool = True) -> None:
        """Stop renewing; with ``release`` give the leases up so another node need not
        wait for them to run out (after a clean stop everything is in the log)."""
        for task in self._keepers:
            task.cancel()
        for task in self._keepers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if release:
            for lease in self.leases.values():
                try:
                    await asyncio.wait_for(lease.release(), 2)
                except Exception as exc:  # the engine may be gone: leases run out then
                    log.warning("releasing a lease failed: %s", exc)
        await self.engine.close()
