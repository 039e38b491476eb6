"""``/health``, ``/version``, ``/cluster-health`` and the ``/`` redirect to the web UI."""

from __future__ import annotations

from restate_server.admin.errors import empty_response, json_response
from restate_server.admin.routing import MAX_API_VERSION, MIN_API_VERSION, Call, Router
from restate_server.http_server import Response


async def health(call: Call) -> Response:
    return empty_response(200)


async def version(call: Call) -> Response:
    state = call.state
    return json_response(
        {
            "version": state.version,
            "min_admin_api_version": MIN_API_VERSION.value,
            "max_admin_api_version": MAX_API_VERSION.value,
            "ingress_endpoint": state.ingress_endpoint,
            "features": state.features,
        }
    )


async def cluster_health(call: Call) -> Response:
    return json_response(
        {
            "cluster_name": call.state.cluster_name,
            "metadata_cluster_health": {"members": [1]},
        }
    )


async def root(call: Call) -> Response:
    # the real server redirects to its web UI, which we do not serve
    return empty_response(308, {"location": "/ui/"})


def add_routes(router: Router) -> None:
    router.add("GET", "/", root)
    router.add("GET", "/health", health)
    router.add("GET", "/version", version)
    router.add("GET", "/cluster-health", cluster_health)
