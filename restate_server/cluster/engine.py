"""The connection to the engine (NATS JetStream) and the objects a cluster keeps in it.

``Engine.connect`` reaches any of the engine's servers (the client fails over between
them by itself) and ``ensure_layout`` creates, if they are missing, the log and snapshot
streams and the key-value buckets of ``docs/cluster.md``, each replicated ``replicas``
times.
Creating them is idempotent, so every node does it at start and the first one wins.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import nats
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NoStreamResponseError
from nats.js.kv import KeyValue

from restate_server.cluster.names import EngineNames

# a publish waits this long for the engine's ack before the client asks again (the
# stream may be electing a new leader after one of its servers died)
PUBLISH_TIMEOUT_S = 2.0
# a retried publish with the same id within this window is recognised as a duplicate
DUPLICATE_WINDOW_S = 120.0


T = TypeVar("T")
# at start, the engine may still be electing its leaders, or another node may just have
# created a stream whose replicas are not answering yet
SETUP_RETRY_S = 30.0
TRANSIENT = (NoStreamResponseError, NoRespondersError, NatsTimeout, TimeoutError)


async def retrying(operation: Callable[[], Awaitable[T]], within_s: float = SETUP_RETRY_S) -> T:
    """``operation()``, tried again on the engine's transient errors for ``within_s``."""
    deadline = time.monotonic() + within_s
    pause = 0.05
    while True:
        try:
            return await operation()
        except TRANSIENT:
            if time.monotonic() + pause > deadline:
                raise
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)


@dataclass
class Engine:
    nc: Client
    js: JetStreamContext
    names: EngineNames

    @classmethod
    async def connect(cls, servers: Sequence[str], cluster_name: str, name: str) -> Engine:
        nc = await nats.connect(
            servers=list(servers),
            name=name,
            max_reconnect_attempts=-1,  # keep trying: the engine outlives any one server
            reconnect_time_wait=0.2,
            connect_timeout=2,
        )
        return cls(nc, nc.jetstream(timeout=PUBLISH_TIMEOUT_S), EngineNames(cluster_name))

    async def close(self) -> None:
        await self.nc.close()

    async def ensure_layout(self, replicas: int, lease_ttl_s: float) -> Layout:
        names = self.names
        config = StreamConfig(
            name=names.log_stream,
            subjects=[names.log_subjects],
            storage=StorageType.FILE,
            num_replicas=replicas,
            discard=DiscardPolicy.NEW,  # a full stream refuses appends, never drops records
            duplicate_window=DUPLICATE_WINDOW_S,
            allow_direct=True,
        )
        snapshots = StreamConfig(
            name=names.snapshots_stream,
            subjects=[names.snapshot_subjects],
            storage=StorageType.FILE,
            num_replicas=replicas,
            allow_direct=True,
        )
        for stream in (config, snapshots):
            try:
                await self.js.add_stream(stream)
            except BadRequestError as exc:
                # 10058: a stream of that name exists with another configuration
                # (another node created it first, or an older version did): use it
                if exc.err_code != 10058:
                    raise
        leases = await self.js.create_key_value(
            bucket=names.leases_bucket, history=1, ttl=lease_ttl_s, replicas=replicas
        )
        # a node's entry expires as its leases do, unless the node renews it
        nodes = await self.js.create_key_value(
            bucket=names.nodes_bucket, history=1, ttl=lease_ttl_s, replicas=replicas
        )
        registry = await self.js.create_key_value(
            bucket=names.registry_bucket, history=1, replicas=replicas
        )
        return Layout(leases, nodes, registry)


@dataclass
class Layout:
    leases: KeyValue
    nodes: KeyValue
    registry: KeyValue
