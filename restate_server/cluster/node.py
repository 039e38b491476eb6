"""This node's part in a cluster: the engine connection, its leases and logs.

At start the node connects to the engine, creates the cluster's objects if it is the
first, reads the partition count and the registry from the engine, then takes the
partitions. Taking one means: hold its lease, fence its log (a record no earlier leader
can write past), bring the local store up to the end of the log, and commit from then
on through a ``LogCommitter``.

Every node takes free partitions while it leads fewer than its share (the partition
count over the live nodes), and follows the lease table to route the others to their
leaders. A node that leads more than its share while none is free (a node joined)
hands some over: it stops them and deletes their leases, and the newcomer takes them.
A lost lease or a fenced log stops the node, which is what lets another one take over
safely.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from restate_server.cluster.catch_up import catch_up
from restate_server.cluster.engine import Engine, Layout, retrying
from restate_server.cluster.leases import PartitionLease, lease_holder
from restate_server.cluster.log_committer import LogCommitter
from restate_server.cluster.log_records import FenceRecord
from restate_server.cluster.membership import NodeInfo, announce, live_nodes, withdraw
from restate_server.cluster.partition_log import Fenced, PartitionLog
from restate_server.cluster.routes import ClusterRoutes
from restate_server.cluster.snapshots import SnapshotStore, Snapshotter, restore_latest
from restate_server.partition.table import PartitionTable
from restate_server.storage.db import Store

log = logging.getLogger(__name__)

PARTITION_COUNT_KEY = "partitions"
SCHEMA_KEY = "schema"
# how often a node reads the lease and node tables (at most: a third of a lease time)
PLACEMENT_PERIOD_S = 0.5
# how long an admin change waits for every live node to take the new registry
REGISTRY_WAIT_S = 10.0
# partitions a node above its share hands over per placement round
HANDOVERS_PER_ROUND = 4
# how long a starting node waits, once in the nodes table, before taking partitions
DISCOVERY_S = 1.0


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

    def take(self, data: bytes, revision: int) -> None:
        """The registry as another node published it."""
        self._revision = revision
        self._data = self._published = data

    @property
    def revision(self) -> int:
        return self._revision

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


@dataclass
class Placement:
    """What placement rounds act on, set up once by the server: the partition table, the
    store the partitions taken here live in, the routes, and what to do when a
    partition is taken (start its processor), handed over (stop it) or lost (stop the
    node)."""

    table: PartitionTable
    store: Store
    routes: ClusterRoutes
    on_led: Callable[[int], Awaitable[None]]
    on_release: Callable[[int], Awaitable[None]]
    on_lost: Callable[[str], None]


class ClusterNode:
    def __init__(self, engine: Engine, layout: Layout, node_name: str, options: Any) -> None:
        self.engine = engine
        self.layout = layout
        self.node_name = node_name
        self._options = options
        self.leases: dict[int, PartitionLease] = {}
        self.committers: dict[int, LogCommitter] = {}
        self.snapshots = SnapshotStore(engine)
        self.snapshotters: dict[int, Snapshotter] = {}
        self._keepers: dict[int, asyncio.Task[None]] = {}
        self.metadata: EngineMetadataStore | None = None
        self._info: NodeInfo | None = None
        # takes a registry another node published (SchemaRegistry.adopt)
        self.on_registry: Callable[[bytes], Any] | None = None

    @classmethod
    async def connect(cls, config: Any) -> ClusterNode:
        options = config.py.cluster
        node_name = config.node_name or socket.gethostname()
        engine = await Engine.connect(options.engine_urls, config.cluster_name, node_name)
        try:
            layout = await retrying(
                lambda: engine.ensure_layout(
                    options.replication_factor, options.lease_duration_ms / 1000
                )
            )
        except BaseException:
            await engine.close()
            raise
        return cls(engine, layout, node_name, options)

    async def partition_count(self, default: int) -> int:
        """Fixed when the cluster is first created; a later node's default is ignored."""
        registry = self.layout.registry

        async def create() -> None:
            with contextlib.suppress(KeyWrongLastSequenceError):  # set by an earlier node
                await registry.create(PARTITION_COUNT_KEY, str(default).encode())

        await retrying(create)
        entry = await retrying(lambda: registry.get(PARTITION_COUNT_KEY))
        return int((entry.value or b"0").decode())

    async def registry_store(self) -> EngineMetadataStore:
        try:
            entry = await retrying(lambda: self.layout.registry.get(SCHEMA_KEY))
            data, revision = entry.value, entry.revision or 0
        except KeyNotFoundError:
            data, revision = None, 0
        self.metadata = EngineMetadataStore(self.layout, data, revision)
        return self.metadata

    async def try_lead(
        self,
        partition_id: int,
        store: Store,
        table: PartitionTable,
        on_lost: Callable[[str], None],
    ) -> bool:
        """Take ``partition_id`` if nobody holds it: hold its lease, catch the store up
        with its log and fence the log. Its committer is in ``committers`` then."""
        options = self._options
        ttl_s = options.lease_duration_ms / 1000
        lease = PartitionLease(self.layout.leases, partition_id, self.node_name, ttl_s)
        if not await lease.acquire():
            return False
        partition_log = PartitionLog(
            self.engine,
            partition_id,
            last_sequence=0,
            writer=f"{self.node_name}:{lease.epoch}",
            commit_timeout_s=options.commit_timeout_ms / 1000,
        )
        # a store behind the latest snapshot starts from it: the log below is purged
        await restore_latest(self.snapshots, store, table, partition_id)
        while True:
            tail = await PartitionLog.tail(self.engine, partition_id)
            await catch_up(partition_log, store, tail)
            try:
                await partition_log.append(FenceRecord(lease.epoch, self.node_name))
                break
            except Fenced:
                continue  # the old leader wrote once more: replay that too, then fence
        # the store's sequence stays before the fence record until the first commit:
        # a catch-up replays that record as the no-op it is

        def fenced(exc: Fenced) -> None:
            on_lost(f"partition {partition_id}: {exc}")

        written = None
        every = options.snapshot_interval_num_records
        if every:
            snapshotter = Snapshotter(
                self.snapshots, store, table, partition_id, lease.epoch, every
            )
            self.snapshotters[partition_id] = snapshotter
            written = snapshotter.written
        self.leases[partition_id] = lease
        self.committers[partition_id] = LogCommitter(
            partition_log, store, lease.epoch, fenced, written
        )
        self._keepers[partition_id] = asyncio.get_running_loop().create_task(
            lease.keep(lambda: on_lost(f"partition {partition_id}: lease lost")),
            name=f"lease-{partition_id}",
        )
        log.info("leading partition %s (epoch %s)", partition_id, lease.epoch)
        return True

    async def give_up(self, partition_id: int) -> None:
        """Hand ``partition_id`` over: its processor has stopped and everything it
        committed is in the log; the lease is deleted so that another node takes it."""
        keeper = self._keepers.pop(partition_id, None)
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        committer = self.committers.pop(partition_id, None)
        if committer is not None:
            await committer.wait_idle()
        snapshotter = self.snapshotters.pop(partition_id, None)
        if snapshotter is not None:
            await snapshotter.close()
        lease = self.leases.pop(partition_id, None)
        if lease is not None:
            await lease.release()
        log.info("handed partition %s over", partition_id)

    # ---- membership and placement

    async def announce(self, fabric_address: str) -> None:
        """Enter the nodes table (and stay in it: ``run`` renews the entry)."""
        revision = self.metadata.revision if self.metadata is not None else 0
        self._info = NodeInfo(self.node_name, fabric_address, revision)
        await announce(self.layout.nodes, self._info)

    async def registry_adopted(self) -> None:
        """Tell the other nodes which registry revision this node routes with now."""
        info, metadata = self._info, self.metadata
        if info is None or metadata is None or info.registry_revision == metadata.revision:
            return
        info.registry_revision = metadata.revision
        await announce(self.layout.nodes, info)

    async def publish_registry(self, wait_s: float = REGISTRY_WAIT_S) -> None:
        """Write a registry change to the engine, then wait (bounded) until every live
        node routes with it, so that the admin API answers once it is visible on all."""
        metadata = self.metadata
        if metadata is None:
            return
        await metadata.publish()
        await self.registry_adopted()
        revision = metadata.revision
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            nodes = await live_nodes(self.engine.js, self.engine.names.nodes_bucket)
            behind = [n.name for n in nodes.values() if n.registry_revision < revision]
            if not behind:
                return
            if asyncio.get_running_loop().time() > deadline:
                log.warning("registry revision %s not yet taken by %s", revision, behind)
                return
            await asyncio.sleep(0.02)

    async def watch_registry(self) -> None:
        """Take registry changes other nodes publish as they happen (the placement
        rounds also look, should the watch stall while the engine fails over)."""
        metadata = self.metadata
        if metadata is None:
            return
        while True:
            try:
                watcher = await self.layout.registry.watch(SCHEMA_KEY)
                async for entry in watcher:
                    await self._adopt_registry(entry)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("watching the registry failed (%s); watching again", exc)
                await asyncio.sleep(0.5)

    async def _adopt_registry(self, entry: Any) -> None:
        """Route with the registry in ``entry`` (of the engine's registry bucket) if
        another node published it, and say so in the nodes table."""
        metadata = self.metadata
        if metadata is None or entry is None or not entry.value or entry.revision is None:
            return
        if entry.revision != metadata.revision:
            metadata.take(entry.value, entry.revision)
            if self.on_registry is not None:
                self.on_registry(entry.value)
        await self.registry_adopted()

    async def place(self, placement: Placement) -> None:
        """One round: read the lease and node tables, point the routes, and take free
        partitions while this node leads fewer than its share."""
        with contextlib.suppress(KeyNotFoundError):
            await self._adopt_registry(await self.layout.registry.get(SCHEMA_KEY))
        count = placement.table.count
        nodes = await live_nodes(self.engine.js, self.engine.names.nodes_bucket)
        if self._info is not None:
            nodes.setdefault(self.node_name, self._info)
        holders: dict[int, str | None] = {}
        for partition_id in range(count):
            if partition_id in self.leases:
                holders[partition_id] = self.node_name
                continue
            holder = await lease_holder(self.layout.leases, partition_id)
            holders[partition_id] = holder.node if holder is not None else None
        placement.routes.update(holders, nodes)
        share = math.ceil(count / max(1, len(nodes)))
        free = [p for p, holder in holders.items() if holder is None]
        if not free and len(self.leases) > share:
            # a node joined: hand partitions over, a few per round, for it to take
            for partition_id in sorted(self.leases, reverse=True)[
                : min(HANDOVERS_PER_ROUND, len(self.leases) - share)
            ]:
                await placement.on_release(partition_id)
            return
        # start looking at a node-specific place, so that nodes starting together do
        # not all contend for the same partitions first
        offset = zlib.crc32(self.node_name.encode()) % count
        for step in range(count):
            if len(self.leases) >= share:
                break
            partition_id = (offset + step) % count
            if holders[partition_id] is not None:
                continue
            if await self.try_lead(
                partition_id, placement.store, placement.table, placement.on_lost
            ):
                await placement.on_led(partition_id)

    async def run(self, placement: Placement) -> None:
        """Placement rounds and the node entry's renewal, until cancelled."""
        period_s = min(PLACEMENT_PERIOD_S, self._options.lease_duration_ms / 3000)
        renew_every = max(1, int(self._options.lease_duration_ms / 3000 / period_s))
        rounds = 0
        while True:
            await asyncio.sleep(period_s)
            rounds += 1
            try:
                if rounds % renew_every == 0 and self._info is not None:
                    await announce(self.layout.nodes, self._info)
                await self.place(placement)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the engine is away: the next round tries again
                log.warning("cluster placement round failed: %s", exc)

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
        for task in self._keepers.values():
            task.cancel()
        for task in self._keepers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for snapshotter in self.snapshotters.values():
            await snapshotter.close()
        if release:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(withdraw(self.layout.nodes, self.node_name), 2)
            for lease in self.leases.values():
                try:
                    await asyncio.wait_for(lease.release(), 2)
                except Exception as exc:  # the engine may be gone: leases run out then
                    log.warning("releasing a lease failed: %s", exc)
        await self.engine.close()
