"""What a worker answers when the supervisor asks it (fabric ``Call``s)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from restate_server.server import Server
    from restate_server.workers.fabric import FabricEndpoint


def register_worker_calls(
    server: Server, fabric: FabricEndpoint, schema_ready: asyncio.Event
) -> None:
    def schema(payload: bytes) -> bytes:
        # the supervisor's registry changed (or it connected): take it before answering,
        # so the admin API answers only once every worker routes with it
        server.registry.adopt(payload)
        schema_ready.set()
        return b""

    async def ready(payload: bytes) -> bytes:
        await server.started.wait()
        return b""

    fabric.on_call("schema", schema)
    fabric.on_call("ready", ready)
