"""Composition root: one process with storage, partitions, invoker, ingress and admin."""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from restate_server.http_server import HttpLimits, serve
from restate_server.ingress.server import Ingress, start_ingress
from restate_server.invoker.invoker import Invoker
from restate_server.invoker.retry import RetryPolicy
from restate_server.invoker.transport import Transport
from restate_server.metrics.node import NodeMetrics
from restate_server.node_endpoint import NodeEndpoint, NodeInfo
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
from restate_server.storage import keys
from restate_server.storage.committer import Committer
from restate_server.storage.db import Store

if TYPE_CHECKING:
    from restate_server.http_server import Request, Response
    from restate_server.query.service import QueryService
    from restate_server.request_identity import RequestSigner
    from restate_server.tracing.tracer import InvocationTracer

log = logging.getLogger("restate_server")

SERVER_VERSION = "1.7.12"
# at shutdown, how long partitions get to commit the commands they already hold
QUIESCE_TIMEOUT_S = 5.0


class RocksMetadataStore:
    """The schema registry's persistence: one synced record in the metadata table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def load_schema(self) -> bytes | None:
        return self._store.get(keys.metadata("schema"))

    def save_schema(self, data: bytes) -> None:
        self._store.write({keys.metadata("schema"): data})


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


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


class Server:
    def __init__(self, config: Any) -> None:
        self.config = config
        self.store: Store | None = None
        self.committer: Committer | None = None
        self.partitions: Partitions | None = None
        self.invoker: Invoker | None = None
        self.registry: Any = None
        self.waiters = Waiters()
        self.cleaner: Cleaner | None = None
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
        self.query: QueryService | None = None

    async def start(self) -> None:
        from restate_server.admin.app import AdminState, create_admin_handler
        from restate_server.schema.discovery import default_http_get, discover
        from restate_server.schema.registry import SchemaDefaults, SchemaRegistry

        config = self.config
        # first: a bad key file stops the start before anything is opened
        request_signer = self._request_signer()
        # and a bad tracing endpoint (TracingSetupError)
        self.tracer = tracer = self._tracer()
        loop = asyncio.get_running_loop()
        data_dir = os.path.join(config.base_dir, "db")
        self.store = store = Store(data_dir, sync_writes=config.storage.sync_writes)
        metrics = self.metrics
        self.committer = committer = Committer(
            store, loop, metrics.commit if metrics is not None else None
        )

        policy = config.default_retry_policy
        retry_policy = RetryPolicy(
            initial_interval_ms=policy.initial_interval_ms,
            exponentiation_factor=policy.exponentiation_factor,
            max_interval_ms=policy.max_interval_ms,
            max_attempts=policy.max_attempts,
            on_max_attempts=policy.on_max_attempts,
        )
        defaults = SchemaDefaults(
            inactivity_timeout_ms=config.worker.invoker.inactivity_timeout_ms,
            abort_timeout_ms=config.worker.invoker.abort_timeout_ms,
            idempotency_retention_ms=config.default_idempotency_retention_ms,
            journal_retention_ms=config.default_journal_retention_ms,
            workflow_completion_retention_ms=config.default_workflow_completion_retention_ms,
            retry_policy=retry_policy,
        )
        self.registry = registry = SchemaRegistry(RocksMetadataStore(store), defaults)

        table = PartitionTable(self._partition_count(store))
        processors: list[PartitionProcessor] = []
        self.partitions = partitions = Partitions(table, processors)
        transport = Transport()
        if metrics is not None:
            metrics.add_partitions(table.count)
        self.invoker = invoker = Invoker(
            store=store,
            registry=registry,
            transport=transport,
            processor_for=partitions.for_invocation,
            default_retry_policy=retry_policy,
            durable_read=committer.read,
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
                elif isinstance(action, Shuffle):
                    shuffle(action)
                else:
                    invoker.perform(action)

        def shuffle(action: Shuffle) -> None:
            source = processors[action.source_partition]
            sequence = action.sequence
            processors[action.target_partition].submit(
                Deliver(action.source_partition, sequence, action.command),
                lambda: source.submit(TruncateOutbox(sequence)),
            )

        for partition_id in range(table.count):
            machine = StateMachine(partition_id, table, registry)
            processors.append(
                PartitionProcessor(
                    partition_id,
                    table.range_of(partition_id),
                    store,
                    committer,
                    machine,
                    perform,
                    metrics=metrics.partitions[partition_id] if metrics is not None else None,
                )
            )
        for processor in processors:
            await processor.start()
        for processor in processors:
            perform(list(processor.outbox_backlog()))
        self.cleaner = Cleaner(store, partitions, config.worker.cleanup_interval_ms)
        self.cleaner.start()

        ingress = Ingress(
            registry,
            partitions,
            waiters,
            metrics.ingress if metrics is not None else None,
            tracer=tracer,
            storage=committer,
        )
        host, port = _split_address(config.ingress.bind_address)
        self._ingress_server = await start_ingress(ingress, host, port, self._http_limits())
        self.ingress_address = self._ingress_server.sockets[0].getsockname()[:2]

        advertised = (
            config.ingress.advertised_ingress_endpoint
            or f"http://127.0.0.1:{self.ingress_address[1]}/"
        )

        async def http_get(url: str, headers: list[tuple[str, str]], use_http_11: bool) -> Any:
            return await default_http_get(url, headers, use_http_11, h2_pool=transport.h2_pool)

        admin_state = AdminState(
            registry=registry,
            discover=lambda uri, **kw: discover(
                uri,
                http_get=http_get,
                cluster_name=config.cluster_name,
                request_signer=request_signer,
                **kw,
            ),
            version=SERVER_VERSION,
            ingress_endpoint=advertised,
            invocations=InvocationOperations(partitions, waiters),
            cluster_name=config.cluster_name,
            query=self._query_handler(store, committer, table, invoker, registry),
            storage=committer,
        )
        host, port = _split_address(config.admin.bind_address)
        self._admin_server = await serve(
            create_admin_handler(admin_state), host, port, limits=self._http_limits()
        )
        self.admin_address = self._admin_server.sockets[0].getsockname()[:2]
        if metrics is not None:
            metrics.watch_partitions(processors, table.count)
            metrics.watch_invoker_tasks(lambda: invoker.tasks.values())
            metrics.watch_pool(transport.h2_pool)
            metrics.histograms.start(loop)
        await self._start_node_server(advertised)
        log.info(
            "restate-server ready: ingress on %s:%s, admin on %s:%s, node on %s:%s, "
            "%d partitions, data in %s",
            *self.ingress_address,
            *self.admin_address,
            *self.node_address,
            table.count,
            data_dir,
        )

    async def _start_node_server(self, advertised_ingress: str) -> None:
        """The node address: /metrics and /health."""
        config = self.config
        host, port = config.node_bind_host_port()
        registry = self.registry
        info = NodeInfo(
            cluster_name=config.cluster_name,
            node_name=config.node_name or socket.gethostname(),
            schema_version=lambda: registry.version,
        )
        self._node_server = await serve(NodeEndpoint(info, self.metrics).handle, host, port)
        self.node_address = self._node_server.sockets[0].getsockname()[:2]
        assert self.ingress_address is not None and self.admin_address is not None
        addresses = [
            ("http-ingress-server", self.ingress_address),
            ("admin-api-server", self.admin_address),
            ("message-fabric-server", self.node_address),
        ]
        info.bound_addresses = [(name, f"{h}:{p}") for name, (h, p) in addresses]
        advertised_admin = config.admin.advertised_admin_endpoint or (
            f"http://127.0.0.1:{self.admin_address[1]}/"
        )
        info.advertised_addresses = [
            ("http-ingress-server", advertised_ingress),
            ("admin-api-server", advertised_admin),
            ("message-fabric-server", f"http://127.0.0.1:{self.node_address[1]}/"),
        ]

    def _query_handler(
        self,
        store: Store,
        committer: Committer,
        table: PartitionTable,
        invoker: Invoker,
        registry: Any,
    ) -> Callable[[Request, Any], Awaitable[Response]]:
        """POST /query: the query service is made by the first query (and DataFusion is
        imported by it), so a server nobody queries pays nothing for it."""

        async def handle(request: Request, version: Any) -> Response:
            query = self.query
            if query is None:
                # imported off the loop: with a cold page cache an import reads files
                service = await asyncio.to_thread(
                    importlib.import_module, "restate_server.query.service"
                )
                query = self.query  # another request may have made it meanwhile
                if query is None:
                    query = self.query = service.QueryService(
                        snapshot=lambda ranges: committer.read(
                            lambda: store.snapshot(ranges), consistent=False
                        ),
                        partitions=table,
                        invoker_tasks=lambda: invoker.tasks.values(),
                        registry=registry,
                        server_version=SERVER_VERSION,
                        memory_limit=self.config.py.query.memory_limit,
                    )
            return await query(request, version)

        return handle

    def _http_limits(self) -> HttpLimits:
        """``[py.http]`` for the ingress and admin servers."""
        http = self.config.py.http
        return HttpLimits(
            max_body_bytes=http.max_body_size,
            max_head_bytes=http.max_header_size,
            max_headers=http.max_headers,
            header_timeout_s=http.header_read_timeout_ms / 1000,
            body_timeout_s=http.body_read_timeout_ms / 1000,
            idle_timeout_s=http.idle_timeout_ms / 1000,
        )

    def _request_signer(self) -> RequestSigner | None:
        """The request identity signer; raises ``RequestIdentityKeyError`` on a bad key file."""
        options = self.config.worker.invoker
        if not options.request_identity_private_key_pem_file:
            return None
        # imports ``cryptography``: only paid when a key is configured
        from restate_server.request_identity import load_request_signer

        return load_request_signer(
            options.request_identity_private_key_pem_file, options.request_identity_expiration_ms
        )

    def _tracer(self) -> InvocationTracer | None:
        """Invocation spans, when a tracing endpoint is configured."""
        config = self.config
        if not (config.tracing_services_endpoint or config.tracing_endpoint):
            return None
        # imports OpenTelemetry: only paid when tracing is on
        from restate_server.tracing import start_tracing

        return start_tracing(config, SERVER_VERSION)

    def _partition_count(self, store: Store) -> int:
        """Fixed when the base dir is first used: keys must keep mapping to the same partition."""
        raw = store.get(keys.metadata("partitions"))
        if raw is not None:
            return keys.decode_u64(raw)
        count = int(self.config.bootstrap_num_partitions)
        store.write({keys.metadata("partitions"): keys.encode_u64(count)})
        return count

    async def stop(self, drain_timeout_s: float = 0.0, hurry: asyncio.Event | None = None) -> None:
        """Stop accepting requests, give running attempts up to ``drain_timeout_s`` to
        finish or suspend (cut short when ``hurry`` is set, e.g. by a second signal), let
        the partitions commit what they were given, then flush and close storage.
        Whatever is still running at the end resumes from storage at the next start."""
        if self.metrics is not None:
            self.metrics.histograms.stop()
        if self._ingress_server is not None:
            self._ingress_server.close()
        if self._admin_server is not None:
            self._admin_server.close()
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
        if self.partitions is not None:
            for processor in self.partitions.processors:
                await processor.quiesce(QUIESCE_TIMEOUT_S)
        if self.invoker is not None:
            await self.invoker.close()
        if self.partitions is not None:
            for processor in self.partitions.processors:
                await processor.stop()
        if self.query is not None:
            await self.query.close()
        if self.committer is not None:
            self.committer.close()
        if self.store is not None:
            self.store.close()
        if self.tracer is not None:
            # export the spans still buffered (at most 3 s; off the loop: it blocks)
            await asyncio.to_thread(self.tracer.shutdown)
