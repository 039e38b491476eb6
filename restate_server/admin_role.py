"""The admin side of a node: the admin API's state and the node address (/metrics,
/health), wired the same way whether the partitions run in this process (``Server``)
or in worker processes (``Supervisor``)."""

from __future__ import annotations

import asyncio
import importlib
import socket
from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from restate_server.http_server import serve
from restate_server.node_endpoint import MetricsSource, NodeEndpoint, NodeInfo

if TYPE_CHECKING:
    from restate_server.admin.app import AdminState
    from restate_server.http_server import Request, Response
    from restate_server.invoker.transport import Transport
    from restate_server.partition.operations import InvocationOperations
    from restate_server.query.service import QueryService
    from restate_server.request_identity import RequestSigner

Address = tuple[str, int]


def advertised_ingress_url(config: Any, ingress_address: Address) -> str:
    return config.ingress.advertised_ingress_endpoint or f"http://127.0.0.1:{ingress_address[1]}/"


def admin_state(
    config: Any,
    *,
    registry: Any,
    transport: Transport,
    request_signer: RequestSigner | None,
    ingress_address: Address,
    invocations: InvocationOperations,
    **extra: Any,
) -> AdminState:
    """The admin API's state; discovery shares the invoker side's HTTP/2 pool.
    ``extra``: the rest of ``AdminState`` (query, storage) where this process has it."""
    from restate_server.admin.app import AdminState
    from restate_server.schema.discovery import default_http_get, discover
    from restate_server.server import SERVER_VERSION

    async def http_get(url: str, headers: list[tuple[str, str]], use_http_11: bool) -> Any:
        return await default_http_get(url, headers, use_http_11, h2_pool=transport.h2_pool)

    return AdminState(
        registry=registry,
        discover=lambda uri, **kw: discover(
            uri,
            http_get=http_get,
            cluster_name=config.cluster_name,
            request_signer=request_signer,
            **kw,
        ),
        version=SERVER_VERSION,
        ingress_endpoint=advertised_ingress_url(config, ingress_address),
        invocations=invocations,
        cluster_name=config.cluster_name,
        **extra,
    )


class LazyQuery:
    """``POST /query``: the query service is made by the first query (DataFusion and
    pyarrow are imported by it), so a server nobody queries pays nothing for it.
    ``make``: the ``restate_server.query.service`` module -> the service."""

    def __init__(self, make: Callable[[ModuleType], QueryService], *also: str) -> None:
        self._make = make
        # more modules to import off the loop before ``make`` runs
        self._also = also
        self.service: QueryService | None = None

    async def __call__(self, request: Request, version: Any) -> Response:
        service = self.service
        if service is None:
            # imported off the loop: with a cold page cache an import reads files
            for name in self._also:
                await asyncio.to_thread(importlib.import_module, name)
            module = await asyncio.to_thread(
                importlib.import_module, "restate_server.query.service"
            )
            service = self.service  # another request may have made it meanwhile
            if service is None:
                service = self.service = self._make(module)
        return await service(request, version)

    async def close(self) -> None:
        if self.service is not None:
            await self.service.close()


async def serve_node_address(
    config: Any,
    registry: Any,
    metrics: MetricsSource | None,
    ingress_address: Address,
    admin_address: Address,
) -> asyncio.AbstractServer:
    """The node address, with the addresses ``/health`` reports."""
    host, port = config.node_bind_host_port()
    info = NodeInfo(
        cluster_name=config.cluster_name,
        node_name=config.node_name or socket.gethostname(),
        schema_version=lambda: registry.version,
    )
    server = await serve(NodeEndpoint(info, metrics).handle, host, port)
    node_address = server.sockets[0].getsockname()[:2]
    addresses = [
        ("http-ingress-server", ingress_address),
        ("admin-api-server", admin_address),
        ("message-fabric-server", node_address),
    ]
    info.bound_addresses = [(name, f"{h}:{p}") for name, (h, p) in addresses]
    advertised_admin = config.admin.advertised_admin_endpoint or (
        f"http://127.0.0.1:{admin_address[1]}/"
    )
    info.advertised_addresses = [
        ("http-ingress-server", advertised_ingress_url(config, ingress_address)),
        ("admin-api-server", advertised_admin),
        ("message-fabric-server", f"http://127.0.0.1:{node_address[1]}/"),
    ]
    return server
