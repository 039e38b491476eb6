"""The node's /metrics with worker processes: every worker's families, merged into one
scrape by the supervisor (no sockets: links answer with what a worker's call does)."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from prometheus_client.parser import text_string_to_metric_families

from restate_server.http_server import Request
from restate_server.metrics.ingress import COMPLETED
from restate_server.metrics.node import NodeMetrics
from restate_server.metrics.workers import WorkerMetrics
from restate_server.node_endpoint import NodeEndpoint, NodeInfo


class _Partition:
    def __init__(self) -> None:
        self.metrics = None
        self.queued_commands = 2
        self.timers_armed = 1


class FakeLink:
    def __init__(self, name: str, node: NodeMetrics | None) -> None:
        self.name = name
        self.node = node
        self.connected = node is not None
        self.asked = 0

    def call(self, method: str, payload: bytes = b"") -> asyncio.Future[bytes]:
        assert method == "metrics"
        self.asked += 1
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        if self.node is None:
            future.set_exception(ConnectionError(f"{self.name} went away"))
        else:  # what worker_calls answers
            future.set_result(msgspec.msgpack.encode(self.node.families()))
        return future


def _worker(admitted: int, completed: int, partitions: int) -> NodeMetrics:
    node = NodeMetrics()
    node.ingress.admitted = admitted
    call = node.ingress.target("Greeter", False)
    for _ in range(completed):
        call.durations.values.append(1_000)
        call.statuses[COMPLETED] += 1
    # a worker reports the partitions it leads as its share of the node's count
    node.watch_partitions([_Partition() for _ in range(partitions)], partitions)
    return node


def _samples(body: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        for sample in fam.samples:
            labels = tuple(
                sorted(
                    (k, v)
                    for k, v in sample.labels.items()
                    if k not in ("cluster_name", "node_name")
                )
            )
            out[(sample.name, labels)] = sample.value
    return out


async def _scrape(links: list[Any]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    endpoint = NodeEndpoint(NodeInfo("localcluster", "n1"), WorkerMetrics(lambda: links))
    answer = endpoint.handle(Request("GET", "/metrics", [], b""))
    response = await answer  # type: ignore[misc]
    assert response.status == 200
    return _samples(response.body)


async def test_a_scrape_adds_up_every_workers_metrics() -> None:
    links = [FakeLink("worker-0", _worker(3, 2, 12)), FakeLink("worker-1", _worker(5, 1, 12))]
    samples = await _scrape(links)
    assert samples[("restate_ingress_requests_total", (("status", "admitted"),))] == 8
    completed = (("rpc_service", "Greeter"), ("rpc_type", "call"), ("status", "completed"))
    assert samples[("restate_ingress_requests_total", completed)] == 3
    assert samples[("restate_num_partitions", ())] == 24
    assert samples[("restate_num_active_partitions", ())] == 24
    durations = (("rpc_service", "Greeter"), ("rpc_type", "call"))
    assert samples[("restate_ingress_request_duration_seconds_count", durations)] == 3


async def test_a_worker_that_is_away_is_left_out_of_the_scrape() -> None:
    away = FakeLink("worker-1", None)
    links = [FakeLink("worker-0", _worker(3, 0, 12)), away]
    samples = await _scrape(links)
    assert samples[("restate_ingress_requests_total", (("status", "admitted"),))] == 3
    # not connected: not asked at all
    assert away.asked == 0
    away.connected = True
    samples = await _scrape(links)
    assert away.asked == 1
    assert samples[("restate_num_partitions", ())] == 12
