"""The admin API application (port 9070).

``create_admin_handler(state)`` returns the request handler for our HTTP server
(``http_server.py``): every request goes to our router (``routing.py``), which
reproduces the real server's version prefixes, 404/405 behaviour and error shapes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from restate_server.admin import deployments, health, invocations, openapi, services, subscriptions
from restate_server.admin.errors import ApiError
from restate_server.admin.invocations import InvocationAdmin
from restate_server.admin.routing import ApiVersion, Call, Router
from restate_server.http_server import Request, Response
from restate_server.schema.discovery import DiscoveryResult
from restate_server.schema.registry import SchemaRegistry

# the experimental feature flags restate-server 1.7.12 reports (all off by default)
DEFAULT_FEATURES: dict[str, bool] = {
    "protocol_v7": False,
    "scoped_promise_table_migration": False,
    "scoped_virtual_objects": False,
    "scoped_state_table_migration": False,
    "invoker_yield": False,
    "unique_random_seeds": False,
    "kafka_scope": False,
    "preflight_invocation_termination_retention": False,
    "vqueues_async_refill": False,
    "vqueues": False,
    "vqueue_obsolete_cleanup": False,
    "vqueues_migration_skip_completed": False,
}

# discover(uri, *, use_http_11, additional_headers) -> DiscoveryResult
Discover = Callable[..., Awaitable[DiscoveryResult]]
# POST /query is served by the SQL layer: (request, api version) -> response
QueryHandler = Callable[[Request, ApiVersion], Awaitable[Response]]


@dataclass
class AdminState:
    registry: SchemaRegistry
    discover: Discover
    version: str = "1.7.12"
    # advertised ingress URL, e.g. "http://127.0.0.1:8080/"
    ingress_endpoint: str | None = None
    invocations: InvocationAdmin | None = None
    query: QueryHandler | None = None
    cluster_name: str = "localcluster"
    features: dict[str, bool] = field(default_factory=lambda: dict(DEFAULT_FEATURES))
    # one registration at a time: two concurrent registrations of the same new URI would
    # otherwise both discover and both create a deployment
    registration_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    extra: dict[str, Any] = field(default_factory=dict)
    # says when new work cannot be committed (a full disk): writes get 503
    storage: Any = None


async def _query(call: Call) -> Response:
    handler = call.state.query
    if handler is None:
        raise ApiError(501, "SQL queries are not available on this server")
    return await handler(call.request, call.version)


def build_router(state: AdminState) -> Router:
    router = Router(state)
    health.add_routes(router)
    deployments.add_routes(router)
    services.add_routes(router)
    invocations.add_routes(router)
    subscriptions.add_routes(router)
    router.add("POST", "/query", _query)
    openapi.add_routes(router)
    return router


def create_admin_handler(state: AdminState) -> Callable[[Request], Awaitable[Response]]:
    return build_router(state).dispatch
