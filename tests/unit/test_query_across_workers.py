"""/query when partitions live in worker processes: the supervisor's view reads every
partition from the worker that leads it, page by page, and answers exactly what one
process over the same records answers (no sockets: links call the workers' handlers)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from restate_server.admin.app import AdminState, create_admin_handler
from restate_server.http_server import Request
from restate_server.partition.table import PartitionTable
from restate_server.protocol import messages as pm
from restate_server.query import worker_scans
from restate_server.query.hints import ScanHints
from restate_server.query.partition_scan import ScanRequest
from restate_server.query.remote_view import WorkerViews
from restate_server.query.scan_calls import portable
from restate_server.query.service import QueryService, local_views
from restate_server.query.worker_scans import WorkerScans
from restate_server.storage.snapshot import StoreSnapshot
from tests.unit.fake_schema import FakeSchema
from tests.unit.partition_harness import GREETER, Harness, counter
from tests.unit.query_support import EmptyRegistry

DAY = 86_400_000
PARTITIONS = 6
WORKERS = 2


class FakeLink:
    """A PeerLink whose calls go straight to a worker's handlers."""

    def __init__(self, index: int, scans: WorkerScans) -> None:
        self.name = f"worker-{index}"
        self.connected = True
        self.handlers: dict[str, Callable[[bytes], Awaitable[bytes]]] = scans.handlers()
        self.calls: list[tuple[str, bytes]] = []
        # the calls that fail as if the worker had gone away
        self.broken: set[str] = set()

    def call(self, method: str, payload: bytes = b"") -> asyncio.Future[bytes]:
        self.calls.append((method, payload))
        if method in self.broken:
            future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
            future.set_exception(ConnectionError(f"{self.name} went away"))
            return future
        return asyncio.ensure_future(self.handlers[method](payload))


@pytest.fixture
def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(str(tmp_path / "db"), FakeSchema())
    yield harness
    harness.close()


def _fill(h: Harness) -> None:
    for i in range(40):
        target = counter(f"k{i}")
        invocation_id, _ = h.invoke(target, completion_retention_ms=DAY, journal_retention_ms=DAY)
        h.sdk(invocation_id, pm.SetStateCommandMessage(key=b"count", value=str(i).encode()))
        if i % 3:
            h.end(invocation_id)
    for _ in range(10):
        h.invoke(GREETER, completion_retention_ms=DAY)


class Node:
    """One process's query service and a supervisor's over two workers, same records."""

    def __init__(self, h: Harness) -> None:
        table = PartitionTable(PARTITIONS)

        async def snapshot(ranges: list[tuple[bytes, bytes]]) -> StoreSnapshot:
            return h.store.snapshot(ranges)

        # both workers read the one store: each is only ever asked for its partitions
        self.workers = [WorkerScans(snapshot, table, lambda: []) for _ in range(WORKERS)]
        self.links = [FakeLink(i, scans) for i, scans in enumerate(self.workers)]
        views = WorkerViews(table, lambda p: self.links[p % WORKERS], EmptyRegistry(), "1.7.12")  # type: ignore[arg-type,return-value]
        self.remote = QueryService(open_view=views, partitions=table)
        self.local = QueryService(
            open_view=local_views(snapshot, table, lambda: [], EmptyRegistry(), "1.7.12"),
            partitions=table,
        )

    async def rows(self, service: QueryService, sql: str) -> tuple[int, Any]:
        state = AdminState(registry=None, discover=None, query=service)  # type: ignore[arg-type]
        body = json.dumps({"query": sql}).encode()
        headers = [(b"content-type", b"application/json"), (b"accept", b"application/json")]
        response = await create_admin_handler(state)(Request("POST", "/query", headers, body))
        return response.status, json.loads(response.body)

    def partitions_asked(self, index: int) -> set[int]:
        from restate_server.query.scan_calls import next_decoder

        return {
            next_decoder.decode(payload).partition_id
            for method, payload in self.links[index].calls
            if method == "query_next"
        }

    async def close(self) -> None:
        await self.remote.close()
        await self.local.close()
        for scans in self.workers:
            await scans.close()


@pytest.fixture
async def node(h: Harness) -> AsyncIterator[Node]:
    _fill(h)
    made = Node(h)
    yield made
    await made.close()


QUERIES = [
    "SELECT id, target, status FROM sys_invocation ORDER BY id",
    "SELECT service_key, value_utf8 FROM state ORDER BY service_key",
    "SELECT status, COUNT(*) AS n FROM sys_invocation_status GROUP BY status ORDER BY status",
    "SELECT s.service_key, i.status FROM state s JOIN sys_invocation i "
    "ON s.service_key = i.target_service_key ORDER BY s.service_key",
    "SELECT id FROM sys_invocation ORDER BY id LIMIT 3",
    "SELECT COUNT(*) AS n FROM sys_journal",
    "SELECT service_key FROM state WHERE service_key = 'k7'",
    "SELECT COUNT(*) AS n FROM sys_deployment",
]


@pytest.mark.parametrize("sql", QUERIES)
async def test_workers_answer_what_one_process_answers(node: Node, sql: str) -> None:
    remote = await node.rows(node.remote, sql)
    local = await node.rows(node.local, sql)
    assert remote[0] == 200, remote
    assert remote == local
    assert local[1]["rows"]  # the records are there: the comparison means something


async def test_each_partition_is_read_from_its_worker(node: Node) -> None:
    status, body = await node.rows(node.remote, "SELECT COUNT(*) AS n FROM state")
    assert status == 200 and body["rows"] == [{"n": 40}]
    for index in range(WORKERS):
        assert node.partitions_asked(index) == {
            p for p in range(PARTITIONS) if p % WORKERS == index
        }
    # a key names one partition: only its worker is asked
    for link in node.links:
        link.calls.clear()
    await node.rows(node.remote, "SELECT value_utf8 FROM state WHERE service_key = 'k3'")
    asked = [node.partitions_asked(i) for i in range(WORKERS)]
    assert sorted(len(found) for found in asked) == [0, 1]


async def test_views_are_released_after_the_query(node: Node) -> None:
    await node.rows(node.remote, "SELECT id FROM sys_invocation LIMIT 1")
    for _ in range(50):
        if not any(scans._views for scans in node.workers):
            break
        await asyncio.sleep(0.01)
    assert not any(scans._views for scans in node.workers)
    methods = [method for link in node.links for method, _ in link.calls]
    assert methods.count("query_open") == methods.count("query_close") == WORKERS


async def test_many_pages_per_partition(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker_scans, "PAGE_BYTES", 1)
    sql = "SELECT service_key, value_utf8 FROM state ORDER BY service_key"
    remote = await node.rows(node.remote, sql)
    assert remote == await node.rows(node.local, sql)
    pages = sum(method == "query_next" for link in node.links for method, _ in link.calls)
    assert pages > PARTITIONS


@pytest.mark.parametrize("gone_at", ["query_open", "query_next"])
async def test_a_worker_gone_fails_the_query_clearly(node: Node, gone_at: str) -> None:
    node.links[1].broken = {gone_at}
    status, body = await node.rows(node.remote, "SELECT COUNT(*) FROM state")
    assert status == 503
    assert "worker-1 is not available" in body["message"]
    node.links[1].broken = set()
    status, body = await node.rows(node.remote, "SELECT COUNT(*) AS n FROM state")
    assert status == 200 and body["rows"] == [{"n": 40}]


async def test_a_forgotten_view_is_released(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    from restate_server.query import scan_calls

    scans = node.workers[0]
    opened = scan_calls.encode(scan_calls.OpenView(999, {0: []}))
    await scans.open(opened)
    monkeypatch.setattr(worker_scans, "IDLE_VIEW_S", 0.0)
    await scans.open(scan_calls.encode(scan_calls.OpenView(1000, {0: []})))
    assert set(scans._views) == {1000}


def test_hints_that_would_change_on_the_wire_are_dropped() -> None:
    request = ScanRequest(
        "state",
        ("service_key",),
        ScanHints(
            {"service_key": frozenset({"k1"}), "partition_key": frozenset({Decimal("1")})},
            {"status": frozenset({"ready"})},
            limit=5,
        ),
    )
    sent = portable(request)
    assert sent.hints.allowed == {"service_key": frozenset({"k1"})}
    assert sent.hints.excluded == request.hints.excluded and sent.hints.limit == 5
    plain = ScanRequest("state", ("service_key",), ScanHints({"id": frozenset({"a", 1})}))
    assert portable(plain) is plain
