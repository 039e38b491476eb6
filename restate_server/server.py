"""Composition root: one process with storage, partitions, invoker, ingress and admin."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from restate_server.admin_role import LazyQuery, serve_node_address
from restate_server.http_server import HttpLimits, Request, Response, serve
from restate_server.ingress.server import Ingress, start_ingress
from restate_server.invoker.invoker import Invoker
from restate_server.invoker.retry import RetryPolicy
from restate_server.invoker.transport import Transport
from restate_server.metrics.node import NodeMetrics
from restate_server.partition.actions import (
    Action,
    CommandReply,
    IngressReply,
    IngressSendAck,
    Shuffle,
)
from restate_server.partition.cleaner import Cleaner
from restate_server.partition.commands import Deliver, TruncateOutbox
from restate_server.partition.operations import InvocationOperations
from restate_server.partition.processor import PartitionProcessor
from restate_server.partition.router import Partitions
from restate_server.partition.state_machine import StateMachine
from restate_server.partition.table import PartitionTable
from restate_server.partition.waiters import Waiters
from restate_server.storage.committer import Committer
from restate_server.storage.db import Store
from restate_server.storage.metadata_store import NodeMetadataStore
from restate_server.storage.stores import place_partitions, store_dir, worker_of

if TYPE_CHECKING:
    from restate_server.cluster.node import ClusterNode
    from restate_server.cluster.routes import ClusterRoutes
    from restate_server.query.service import QueryService
    from restate_server.query.worker_scans import WorkerScans
    from restate_server.request_identity import RequestSigner
    from restate_server.tracing.tracer import InvocationTracer

log = logging.getLogger("restate_server")

SERVER_VERSION = "1.7.12"
# at shutdown, how long partitions get to commit the commands they already hold
QUIESCE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class WorkerRole:
    """This process is worker ``index`` of ``count`` under a supervisor: it leads the
    partitions ``worker_of`` gives it, in its own store; the others are reached over the
    fabric (``fabric_addresses[j]``: worker j's endpoint). The ingress socket is
    inherited, listening already; the admin API and the node address are the
    supervisor's."""

    index: int
    count: int
    partition_count: int
    fabric_addresses: tuple[str, ...]
    ingress_fd: int


async def _until_hurried(work: Awaitable[int], hurry: asyncio.Event | None) -> int | str:
    """``work``'s result, or "some" if ``hurry`` is set first (``work`` is cancelled)."""
    task = asyncio.ensure_future(work)
    if hurry is None:
        return await task
    hurried = asyncio.ensure_future(hurry.wait())
    await asyncio.wait({task, hurried}, return_when=asyncio.FIRST_COMPLETED)
    hurried.cancel()
    if task.done():
        return task.result()
    task.cancel()
    return "some"


def invoker_options(config: Any) -> dict[str, Any]:
    """The invoker's settings from the configuration (the message size limit and
    warning once were left out, so every attempt used the 32 MiB default)."""
    invoker = config.worker.invoker
    return {
        "cluster_name": config.cluster_name,
        "enable_protocol_v7": config.experimental_enable_protocol_v7,
        "message_size_limit": invoker.message_size_limit,
        "message_size_warning": invoker.message_size_warning,
    }


def retry_policy_of(config: Any) -> RetryPolicy:
    policy = config.default_retry_policy
    return RetryPolicy(
        initial_interval_ms=policy.initial_interval_ms,
        exponentiation_factor=policy.exponentiation_factor,
        max_interval_ms=policy.max_interval_ms,
        max_attempts=policy.max_attempts,
        on_max_attempts=policy.on_max_attempts,
    )


def schema_defaults_of(config: Any) -> Any:
    from restate_server.schema.registry import SchemaDefaults

    return SchemaDefaults(
        inactivity_timeout_ms=config.worker.invoker.inactivity_timeout_ms,
        abort_timeout_ms=config.worker.invoker.abort_timeout_ms,
        idempotency_retention_ms=config.default_idempotency_retention_ms,
        journal_retention_ms=config.default_journal_retention_ms,
        workflow_completion_retention_ms=config.default_workflow_completion_retention_ms,
        retry_policy=retry_policy_of(config),
    )


def http_limits_of(config: Any) -> HttpLimits:
    """``[py.http]`` for the ingress and admin servers."""
    http = config.py.http
    return HttpLimits(
        max_body_bytes=http.max_body_size,
        max_head_bytes=http.max_header_size,
        max_headers=http.max_headers,
        header_timeout_s=http.header_read_timeout_ms / 1000,
        body_timeout_s=http.body_read_timeout_ms / 1000,
        idle_timeout_s=http.idle_timeout_ms / 1000,
    )


def request_signer_of(config: Any) -> RequestSigner | None:
    """The request identity signer; raises ``RequestIdentityKeyError`` on a bad key file."""
    options = config.worker.invoker
    if not options.request_identity_private_key_pem_file:
        return None
    # imports ``cryptography``: only paid when a key is configured
    from restate_server.request_identity import load_request_signer

    return load_request_signer(
        options.request_identity_private_key_pem_file, options.request_identity_expiration_ms
    )


def _stop_node(reason: str) -> None:
    """Cluster mode: this node lost a partition (its lease, or its log was fenced).
    It stops at once, so that it performs nothing more for partitions another node
    leads now; whatever it held is in the log, and a restart takes partitions again."""
    log.critical("stopping: %s", reason)

    def stop() -> None:
        raise SystemExit(f"fatal: {reason}")

    asyncio.get_running_loop().call_soon(stop)


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


class Server:
    def __init__(self, config: Any, role: WorkerRole | None = None) -> None:
        self.config = config
        # None: the whole server in this one process (one worker, no supervisor)
        self.role = role
        self.store: Store | None = None
        self.committer: Committer | None = None
        # what the APIs and the invoker read through: the committer, or in cluster mode
        # the node's log committers
        self.durable_reads: Any = None
        self.partitions: Partitions | None = None
        # the partitions this process leads (all of them without a role)
        self.local_processors: list[PartitionProcessor] = []
        self.invoker: Invoker | None = None
        self.registry: Any = None
        self.waiters = Waiters()
        self.cleaner: Cleaner | None = None
        # the registry's and the partition count's home (not in a worker: the supervisor's)
        self.metadata: NodeMetadataStore | None = None
        # set once a worker leads its partitions and serves (the supervisor asks "ready")
        self.started = asyncio.Event()
        self.fabric: Any = None  # a worker's FabricEndpoint
        self.links: list[Any] = []  # a worker's PeerLinks to the other workers
        self._ingress_server: asyncio.AbstractServer | None = None
        self._admin_server: asyncio.AbstractServer | None = None
        self._node_server: asyncio.AbstractServer | None = None
        self.ingress_address: tuple[str, int] | None = None
        self.admin_address: tuple[str, int] | None = None
        self.node_address: tuple[str, int] | None = None
        # None with disable-prometheus: nothing is recorded then
        self.metrics: NodeMetrics | None = None if config.disable_prometheus else NodeMetrics()
        # None unless a tracing endpoint is configured (then OpenTelemetry is imported)
        self.tracer: InvocationTracer | None = None
        # POST /query (set at start)
        self.query: LazyQuery | None = None
        # a worker's read views for the supervisor's queries (made by the first one)
        self.scans: WorkerScans | None = None
        self._schema_ready: asyncio.Event | None = None
        # cluster mode ([py.cluster]): the engine connection, leases and partition logs
        self.cluster: ClusterNode | None = None
        self.cluster_routes: ClusterRoutes | None = None
        self._placement: asyncio.Task[None] | None = None
        self._registry_watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from restate_server.schema.registry import InMemoryMetadataStore, SchemaRegistry

        config = self.config
        role = self.role
        # first: a bad key file stops the start before anything is opened
        request_signer = request_signer_of(config)
        # and a bad tracing endpoint (TracingSetupError)
        self.tracer = tracer = self._tracer()
        loop = asyncio.get_running_loop()
        table: PartitionTable | None = None
        cluster_metadata = None
        if config.py.cluster.enabled:
            # the partition count and the registry live in the engine (docs/cluster.md)
            from restate_server.cluster.node import ClusterNode

            self.cluster = await ClusterNode.connect(config)
            table = PartitionTable(
                await self.cluster.partition_count(config.default_num_partitions)
            )
            cluster_metadata = await self.cluster.registry_store()
        elif role is None:
            # the node's metadata (registry, partition count), then every partition into
            # the one store (moved back from worker stores if N was larger last time)
            self.metadata = NodeMetadataStore(
                config.base_dir, sync_writes=config.storage.sync_writes
            )
            table = PartitionTable(self.metadata.partition_count(config.default_num_partitions))
            report = place_partitions(
                config.base_dir, table, 1, sync_writes=config.storage.sync_writes
            )
            if report.moves:
                log.info("partitions placed for one process: %s", report.summary())
        data_dir = store_dir(config.base_dir, role.index if role is not None else 0)
        cluster = self.cluster
        # in cluster mode the engine's log is the durable copy: no fsync of the store
        sync_writes = config.storage.sync_writes and cluster is None
        self.store = store = Store(data_dir, sync_writes=sync_writes)
        metrics = self.metrics
        storage: Any
        if cluster is None:
            self.committer = storage = Committer(
                store, loop, metrics.commit if metrics is not None else None
            )
        else:
            storage = cluster  # reads and "unavailable" of the partitions' log committers
        self.durable_reads = storage

        retry_policy = retry_policy_of(config)
        defaults = schema_defaults_of(config)
        if cluster_metadata is not None:
            self.registry = registry = SchemaRegistry(cluster_metadata, defaults)
        elif role is None:
            assert self.metadata is not None and table is not None
            self.registry = registry = SchemaRegistry(self.metadata, defaults)
        else:
            # the supervisor's registry, pushed over the fabric before partitions start
            self.registry = registry = SchemaRegistry(InMemoryMetadataStore(), defaults)
            table = PartitionTable(role.partition_count)
            await self._start_fabric()

        entries: list[Any] = []
        self.partitions = partitions = Partitions(table, entries)
        transport = Transport()
        if metrics is not None:
            metrics.add_partitions(table.count)
        self.invoker = invoker = Invoker(
            store=store,
            registry=registry,
            transport=transport,
            processor_for=partitions.for_invocation,
            default_retry_policy=retry_policy,
            durable_read=storage.read,
            **invoker_options(config),
            request_signer=request_signer,
            metrics=metrics.invokers if metrics is not None else None,
            tracer=tracer,
        )
        waiters = self.waiters

        def perform(actions: list[Action]) -> None:
            for action in actions:
                if isinstance(action, (IngressReply, IngressSendAck, CommandReply)):
                    waiters.perform(action)
                    if self.cluster_routes is not None:
                        self.cluster_routes.answered(action.request_id)
                elif isinstance(action, Shuffle):
                    shuffle(action)
                else:
                    invoker.perform(action)

        def shuffle(action: Shuffle) -> None:
            # the target may be led by another worker: the entry leaves the outbox once
            # the target has committed it, wherever it is
            source = entries[action.source_partition]
            sequence = action.sequence
            entries[action.target_partition].submit(
                Deliver(action.source_partition, sequence, action.command),
                lambda: source.submit(TruncateOutbox(sequence)),
            )

        local = self.local_processors

        def processor_of(partition_id: int, committer: Any) -> PartitionProcessor:
            return PartitionProcessor(
                partition_id,
                table.range_of(partition_id),
                store,
                committer,
                StateMachine(partition_id, table, registry),
                perform,
                metrics=metrics.partitions[partition_id] if metrics is not None else None,
            )

        if cluster is not None:
            # routes for every partition; a partition is started as it is taken
            await self._start_cluster_partitions(
                cluster, table, store, entries, processor_of, perform
            )
        else:
            for partition_id in range(table.count):
                if role is not None and worker_of(partition_id, role.count) != role.index:
                    entries.append(self._remote_partition(partition_id))
                    continue
                processor = processor_of(partition_id, storage)
                entries.append(processor)
                local.append(processor)
            if role is not None:
                assert self._schema_ready is not None
                await self._schema_ready.wait()
            for processor in local:
                await processor.start()
            if self.fabric is not None:
                self.fabric.serve_partitions({p.partition_id: p for p in local})
            for processor in local:
                perform(list(processor.outbox_backlog()))
        self.cleaner = Cleaner(store, partitions, config.worker.cleanup_interval_ms)
        self.cleaner.start()

        ingress = Ingress(
            registry,
            partitions,
            waiters,
            metrics.ingress if metrics is not None else None,
            tracer=tracer,
            storage=storage,
        )
        if role is not None:
            listening = socket.socket(fileno=role.ingress_fd)
            self._ingress_server = await start_ingress(
                ingress, "", 0, self._http_limits(), sock=listening
            )
        else:
            host, port = split_address(config.ingress.bind_address)
            self._ingress_server = await start_ingress(ingress, host, port, self._http_limits())
        self.ingress_address = self._ingress_server.sockets[0].getsockname()[:2]
        if metrics is not None:
            # a worker reports its share: the supervisor adds the workers' reports up
            metrics.watch_partitions(local, table.count if role is None else len(local))
            metrics.watch_invoker_tasks(lambda: invoker.tasks.values())
            metrics.watch_pool(transport.h2_pool)
            metrics.watch_store(store)
            metrics.histograms.start(loop)
        self.started.set()
        if role is not None:
            log.info(
                "worker %d of %d ready: %d of %d partitions, data in %s",
                role.index,
                role.count,
                len(local),
                table.count,
                data_dir,
            )
            return
        await self._start_admin(registry, request_signer, transport, table, invoker)
        log.info(
            "restate-server ready: ingress on %s:%s, admin on %s:%s, node on %s:%s, "
            "%d partitions, data in %s",
            *self.ingress_address,
            *self.admin_address,
            *self.node_address,
            table.count,
            data_dir,
        )

    # ---- cluster mode: this node's partitions and routes to the others'

    async def _start_cluster_partitions(
        self,
        cluster: ClusterNode,
        table: PartitionTable,
        store: Store,
        entries: list[Any],
        processor_of: Callable[[int, Any], PartitionProcessor],
        perform: Callable[[list[Action]], None],
    ) -> None:
        """Routes for every partition, the fabric endpoint other nodes send commands
        to, a first placement round (the partitions taken are started before ingress
        opens), then placement in the background: partitions that become free (their
        leader died) are taken over and started while the node serves."""
        from restate_server.cluster.engine import retrying
        from restate_server.cluster.membership import advertised_fabric_address
        from restate_server.cluster.node import DISCOVERY_S, Placement
        from restate_server.cluster.routes import ClusterRoutes
        from restate_server.workers.fabric import FabricEndpoint
        from restate_server.workers.worker_calls import register_query_calls

        options = self.config.py.cluster
        routes = ClusterRoutes(table.count, cluster.node_name, self.waiters)
        self.cluster_routes = routes
        entries.extend(routes.routes)
        self.fabric = fabric = FabricEndpoint(options.fabric_bind_address, self.waiters)
        register_query_calls(self, fabric)  # other nodes read the partitions led here
        await fabric.start()
        # inbound submits go through the routes too: to the processor, or onwards
        fabric.serve_partitions(routes.inbound())
        advertised = advertised_fabric_address(self.config, fabric.address)
        await retrying(lambda: cluster.announce(advertised))
        # nodes started together see each other before they take their shares
        await asyncio.sleep(min(DISCOVERY_S, options.lease_duration_ms / 2000))

        async def led(partition_id: int) -> None:
            processor = processor_of(partition_id, cluster.committers[partition_id])
            self.local_processors.append(processor)
            await processor.start()
            routes.set_local(partition_id, processor)
            perform(list(processor.outbox_backlog()))  # hand-overs not yet confirmed

        async def release(partition_id: int) -> None:
            # new commands wait in the route; the attempts of the partition's invocations
            # stop (they resume on the next leader from the journal); what the processor
            # was given is committed; then the lease goes
            routes.hold(partition_id)
            processor = next(p for p in self.local_processors if p.partition_id == partition_id)
            assert self.invoker is not None
            self.invoker.abort_partition(processor)
            await processor.quiesce(QUIESCE_TIMEOUT_S)
            await processor.stop()
            self.local_processors.remove(processor)
            await cluster.give_up(partition_id)

        cluster.on_registry = self.registry.adopt  # changes made through other nodes
        self._registry_watch = asyncio.get_running_loop().create_task(
            cluster.watch_registry(), name="cluster-registry"
        )
        placement = Placement(table, store, routes, led, release, _stop_node)
        await retrying(lambda: cluster.place(placement))
        self._placement = asyncio.get_running_loop().create_task(
            cluster.run(placement), name="cluster-placement"
        )

    # ---- a worker's fabric

    async def _start_fabric(self) -> None:
        """Listen for the other workers and the supervisor; the partitions start once
        the supervisor has sent the registry (``schema``)."""
        from restate_server.workers.fabric import FabricEndpoint
        from restate_server.workers.link import PeerLink
        from restate_server.workers.worker_calls import register_worker_calls

        role = self.role
        assert role is not None
        self._schema_ready = asyncio.Event()
        self.fabric = fabric = FabricEndpoint(role.fabric_addresses[role.index], self.waiters)
        register_worker_calls(self, fabric, self._schema_ready)
        await fabric.start()
        self.links = [
            None if index == role.index else PeerLink(f"worker-{index}", address, self.waiters)
            for index, address in enumerate(role.fabric_addresses)
        ]
        for link in self.links:
            if link is not None:
                link.start()

    def _remote_partition(self, partition_id: int) -> Any:
        from restate_server.workers.link import RemotePartition

        role = self.role
        assert role is not None
        return RemotePartition(self.links[worker_of(partition_id, role.count)], partition_id)

    # ---- the admin API (the single process; the supervisor has its own)

    async def _start_admin(
        self,
        registry: Any,
        request_signer: RequestSigner | None,
        transport: Transport,
        table: PartitionTable,
        invoker: Invoker,
    ) -> None:
        from restate_server.admin.app import create_admin_handler
        from restate_server.admin_role import admin_state

        config = self.config
        store, committer, partitions = self.store, self.durable_reads, self.partitions
        assert store is not None and committer is not None and partitions is not None
        assert self.ingress_address is not None
        state = admin_state(
            config,
            registry=registry,
            transport=transport,
            request_signer=request_signer,
            ingress_address=self.ingress_address,
            invocations=InvocationOperations(partitions, self.waiters),
            query=self._query_handler(store, committer, table, invoker, registry),
            storage=committer,
        )
        handler = api = create_admin_handler(state)
        cluster = self.cluster
        if cluster is not None and cluster.metadata is not None:

            async def admin(request: Request) -> Response:
                # a change of the registry is answered once the engine holds it and
                # every live node routes with it
                before = registry.version
                response = await api(request)
                if registry.version != before:
                    await cluster.publish_registry()
                return response

            handler = admin
        host, port = split_address(config.admin.bind_address)
        self._admin_server = await serve(handler, host, port, limits=self._http_limits())
        self.admin_address = self._admin_server.sockets[0].getsockname()[:2]
        self._node_server = await serve_node_address(
            config, registry, self.metrics, self.ingress_address, self.admin_address
        )
        self.node_address = self._node_server.sockets[0].getsockname()[:2]

    def _query_handler(
        self,
        store: Store,
        committer: Any,
        table: PartitionTable,
        invoker: Invoker,
        registry: Any,
    ) -> LazyQuery:
        """POST /query over the partitions of this process (of the cluster, in a cluster)."""

        routes = self.cluster_routes

        def make(service: Any) -> QueryService:
            views = service.local_views(
                lambda ranges: committer.read(lambda: store.snapshot(ranges), consistent=False),
                table,
                lambda: invoker.tasks.values(),
                registry,
                SERVER_VERSION,
            )
            if routes is not None:
                # in a cluster: this node's partitions from its store, the rest from
                # their leaders
                from restate_server.query.cluster_views import ClusterViews

                views = ClusterViews(
                    table,
                    routes.node_name,
                    lambda p: routes.routes[p].leader,
                    routes.links.get,
                    views,
                    registry,
                    SERVER_VERSION,
                )
            return service.QueryService(  # type: ignore[no-any-return]
                open_view=views, partitions=table, memory_limit=self.config.py.query.memory_limit
            )

        self.query = LazyQuery(make)
        return self.query

    def _http_limits(self) -> HttpLimits:
        return http_limits_of(self.config)

    def _tracer(self) -> InvocationTracer | None:
        """Invocation spans, when a tracing endpoint is configured."""
        config = self.config
        if not (config.tracing_services_endpoint or config.tracing_endpoint):
            return None
        # imports OpenTelemetry: only paid when tracing is on
        from restate_server.tracing import start_tracing

        return start_tracing(config, SERVER_VERSION)

    async def stop(self, drain_timeout_s: float = 0.0, hurry: asyncio.Event | None = None) -> None:
        """Stop accepting requests, give running attempts up to ``drain_timeout_s`` to
        finish or suspend (cut short when ``hurry`` is set, e.g. by a second signal), let
        the partitions commit what they were given, then flush and close storage.
        Whatever is still running at the end resumes from storage at the next start."""
        if self.metrics is not None:
            self.metrics.histograms.stop()
        for task in (self._placement, self._registry_watch):  # take no more partitions
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._ingress_server is not None:
            self._ingress_server.close()
        if self._admin_server is not None:
            self._admin_server.close()
        if self.fabric is not None:
            # submits from now on wait in their senders' links for the next start
            await self.fabric.close()
        if self.cleaner is not None:
            await self.cleaner.stop()
        if self.invoker is not None:
            still_running = await _until_hurried(self.invoker.drain(drain_timeout_s), hurry)
            if still_running:
                log.warning(
                    "%s invocation attempts still running at shutdown; they resume at the "
                    "next start",
                    still_running,
                )
        for processor in self.local_processors:
            await processor.quiesce(QUIESCE_TIMEOUT_S)
        if self.invoker is not None:
            await self.invoker.close()
        for processor in self.local_processors:
            await processor.stop()
        # the hand-overs still unanswered are sent again by the next start (outbox)
        for link in self.links:
            if link is not None:
                await link.close()
        if self.query is not None:
            await self.query.close()
        if self.scans is not None:
            await self.scans.close()
        if self.committer is not None:
            self.committer.close()
        if self.cluster is not None:
            if self.cluster_routes is not None:
                await self.cluster_routes.close()
            # everything the partitions were given is in the log: give the leases up
            await self.cluster.wait_idle()
            await self.cluster.close(release=True)
        if self.store is not None:
            self.store.close()
        if self.metadata is not None:
            self.metadata.close()
        if self.tracer is not None:
            # export the spans still buffered (at most 3 s; off the loop: it blocks)
            await asyncio.to_thread(self.tracer.shutdown)
