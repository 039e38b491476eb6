"""The node address (``bind-address``, port 5122): ``GET /metrics`` and ``GET /health``.

As on the real server: ``/metrics`` is the Prometheus text format; with
``disable-prometheus`` it still answers 200 but carries none of the server's own
metrics (the real server then lists only its RocksDB statistics, which we do not
export). ``/health`` describes the node (the real server's ``Identification``).
Other paths answer 404, other methods 405.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from restate_server.http_server import Request, Response

if TYPE_CHECKING:
    from restate_server.metrics.families import Family


class MetricsSource(Protocol):
    """The node's metrics: this process's (``NodeMetrics``) or its workers' merged
    (``WorkerMetrics``, which answers asynchronously)."""

    def families(self) -> list[Family] | Awaitable[list[Family]]: ...


ROLES = ["http-ingress", "admin", "worker", "log-server", "metadata-server"]
_NOT_FOUND = b"Are you lost? Maybe visit https://restate.dev instead!"
_TEXT = "text/plain; charset=utf-8"


@dataclass
class NodeInfo:
    """What ``/health`` reports besides the addresses."""

    cluster_name: str
    node_name: str
    # (name, "host:port") of every server the node listens on, e.g. "http-ingress-server"
    bound_addresses: list[tuple[str, str]] = field(default_factory=list)
    # (name, URL) the node advertises
    advertised_addresses: list[tuple[str, str]] = field(default_factory=list)
    schema_version: Callable[[], int] = lambda: 0
    started_at: float = field(default_factory=time.monotonic)


class NodeEndpoint:
    def __init__(self, info: NodeInfo, metrics: MetricsSource | None) -> None:
        self._info = info
        self._metrics = metrics
        self._labels = {"cluster_name": info.cluster_name, "node_name": info.node_name}

    def handle(self, request: Request) -> Response | Awaitable[Response]:
        path = request.raw_path.split("?", 1)[0].rstrip("/") or "/"
        if path not in ("/metrics", "/health"):
            return Response(404, _NOT_FOUND, {"content-type": _TEXT})
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"", {"allow": "GET,HEAD"})
        if path == "/health":
            body = json.dumps(identification(self._info), separators=(",", ":")).encode()
            return Response(200, body, {"content-type": "application/json"})
        return self._scrape()

    def _scrape(self) -> Response | Awaitable[Response]:
        metrics = self._metrics
        if metrics is None:
            return self._rendered([])
        families = metrics.families()
        if inspect.isawaitable(families):
            return self._rendered_later(families)
        return self._rendered(families)

    async def _rendered_later(self, families: Awaitable[list[Family]]) -> Response:
        return self._rendered(await families)

    def _rendered(self, families: list[Family]) -> Response:
        from restate_server.metrics.exposition import CONTENT_TYPE, render

        body = render(lambda: families, self._labels) if self._metrics is not None else b""
        return Response(200, body, {"content-type": CONTENT_TYPE})


def identification(info: NodeInfo) -> dict[str, object]:
    return {
        "status": "Alive",
        "node_id": "N1:1",
        "cluster_name": info.cluster_name,
        "roles": ROLES,
        "age": friendly_duration(time.monotonic() - info.started_at),
        "admin_status": "Ready",
        "worker_status": "Ready",
        "log_server_status": "Ready",
        "metadata_server_status": "Member",
        "nodes_config_version": 1,
        "logs_version": 1,
        "schema_version": info.schema_version(),
        "partition_table_version": 1,
        "bound_addresses": [
            {"name": name, "address": address, "kind": "tcp"}
            for name, address in info.bound_addresses
        ],
        "advertised_addresses": [
            {"name": name, "address": address, "kind": "http"}
            for name, address in info.advertised_addresses
        ],
    }


_UNITS = (
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("µs", 1_000),
    ("ns", 1),
)


def friendly_duration(seconds: float) -> str:
    """The real server's style: ``1d 12h 4m 2s``, ``5s 928ms 651µs 198ns``."""
    remaining = max(0, round(seconds * 1e9))
    parts = []
    for unit, size in _UNITS:
        amount, remaining = divmod(remaining, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts) or "0s"
