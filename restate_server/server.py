"""Composition root: one process with storage, partitions, invoker, ingress and admin."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from restate_server.http_server import serve
from restate_server.ingress.server import Ingress, start_ingress
from restate_server.invoker.invoker import Invoker
from restate_server.invoker.retry import RetryPolicy
from restate_server.invoker.transport import Transport
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
    from restate_server.request_identity import RequestSigner

log = logging.getLogger("restate_server")

SERVER_VERSION = "1.7.12"


class RocksMetadataStore:
    """The schema registry's persistence: one synced record in the metadata table."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def load_schema(self) -> bytes | None:
        return self._store.get(keys.metadata("schema"))

    def save_schema(self, data: bytes) -> None:
        self._store.write({keys.metadata("schema"): data})


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
        self.ingress_address: tuple[str, int] | None = None
        self.admin_address: tuple[str, int] | None = None

    async def start(self) -> None:
        from restate_server.admin.app import AdminState, create_admin_handler
        from restate_server.schema.discovery import default_http_get, discover
        from restate_server.schema.registry import SchemaDefaults, SchemaRegistry

        config = self.config
        # first: a bad key file stops the start before anything is opened
        request_signer = self._request_signer()
        loop = asyncio.get_running_loop()
        data_dir = os.path.join(config.base_dir, "db")
        self.store = store = Store(data_dir, sync_writes=config.storage.sync_writes)
        self.committer = committer = Committer(store, loop)

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
        self.invoker = invoker = Invoker(
            store=store,
            registry=registry,
            transport=transport,
            processor_for=partitions.for_invocation,
            default_retry_policy=retry_policy,
            cluster_name=config.cluster_name,
            enable_protocol_v7=config.experimental_enable_protocol_v7,
            durable_read=committer.read,
            request_signer=request_signer,
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
                    partition_id, table.range_of(partition_id), store, committer, machine, perform
                )
            )
        for processor in processors:
            await processor.start()
        for processor in processors:
            perform(list(processor.outbox_backlog()))
        self.cleaner = Cleaner(store, partitions, config.worker.cleanup_interval_ms)
        self.cleaner.start()

        ingress = Ingress(registry, partitions, waiters)
        host, port = _split_address(config.ingress.bind_address)
        self._ingress_server = await start_ingress(ingress, host, port)
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
        )
        host, port = _split_address(config.admin.bind_address)
        self._admin_server = await serve(create_admin_handler(admin_state), host, port)
        self.admin_address = self._admin_server.sockets[0].getsockname()[:2]
        log.info(
            "restate-server ready: ingress on %s:%s, admin on %s:%s, %d partitions, data in %s",
            *self.ingress_address,
            *self.admin_address,
            table.count,
            data_dir,
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

    def _partition_count(self, store: Store) -> int:
        """Fixed when the base dir is first used: keys must keep mapping to the same partition."""
        raw = store.get(keys.metadata("partitions"))
        if raw is not None:
            return keys.decode_u64(raw)
        count = int(self.config.bootstrap_num_partitions)
        store.write({keys.metadata("partitions"): keys.encode_u64(count)})
        return count

    async def stop(self) -> None:
        if self._ingress_server is not None:
            self._ingress_server.close()
        if self._admin_server is not None:
            self._admin_server.close()
        if self.cleaner is not None:
            await self.cleaner.stop()
        if self.invoker is not None:
            await self.invoker.close()
        if self.partitions is not None:
            for processor in self.partitions.processors:
                await processor.stop()
        if self.committer is not None:
            self.committer.close()
        if self.store is not None:
            self.store.close()
