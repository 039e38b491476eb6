"""ClusterViews: a cluster node's /query reads its own partitions locally and asks the
leaders of the others; a partition without a leader fails the query with a 503."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from restate_server.partition.table import PartitionTable
from restate_server.query import scan_calls
from restate_server.query.cluster_views import ClusterViews
from restate_server.query.errors import QueryFailed
from tests.unit.query_support import EmptyRegistry


class _Link:
    def __init__(self, name: str) -> None:
        self.name = name
        self.opened: list[dict[int, Any]] = []

    async def call(self, method: str, payload: bytes) -> bytes:
        if method == scan_calls.OPEN:
            self.opened.append(scan_calls.open_decoder.decode(payload).ranges)
        return b""


class _LocalView:
    partitions = PartitionTable(4)
    deployments: list[Any] = []
    services: list[Any] = []
    server_version = "test"

    def __init__(self, ranges: dict[int, Any]) -> None:
        self.ranges = ranges
        self.released = False

    def partition_batches(self, table: Any, partition_id: int, request: Any) -> Any:
        return iter([("local", partition_id)])

    def release(self) -> None:
        self.released = True


def _views(leaders: dict[int, str | None], links: dict[str, _Link], made: list[_LocalView]):
    async def local(ranges: dict[int, Any]) -> _LocalView:
        view = _LocalView(ranges)
        made.append(view)
        return view

    return ClusterViews(
        PartitionTable(4),
        "me",
        leaders.get,
        links.get,  # type: ignore[arg-type]
        local,
        EmptyRegistry(),
        "test",
    )


def test_own_partitions_are_read_locally_and_the_others_from_their_leaders() -> None:
    links = {"b": _Link("b"), "c": _Link("c")}
    made: list[_LocalView] = []
    views = _views({0: "me", 1: "b", 2: "c", 3: "me"}, links, made)
    ranges = {p: [(bytes([p]), bytes([p + 1]))] for p in range(4)}
    view = asyncio.run(views(ranges))
    assert set(made[0].ranges) == {0, 3}
    assert [set(r) for r in links["b"].opened] == [{1}]
    assert [set(r) for r in links["c"].opened] == [{2}]
    assert list(view.partition_batches(None, 3, None)) == [("local", 3)]  # type: ignore[arg-type]
    view.release()
    assert made[0].released


def test_a_partition_without_a_leader_fails_the_query_with_503() -> None:
    made: list[_LocalView] = []
    views = _views({0: "me", 1: None, 2: "me", 3: "me"}, {}, made)
    with pytest.raises(QueryFailed) as failed:
        asyncio.run(views({p: [] for p in range(4)}))
    assert failed.value.status == 503 and "partition 1" in failed.value.message
    assert made[0].released  # the local snapshot is not leaked
