"""Running /query statements in unit tests: a QueryEngine over a harness's store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from restate_server.partition.table import PartitionTable
from restate_server.query.arrow_format import ArrowStream
from restate_server.query.engine import QueryEngine
from restate_server.query.in_flight import InvokerState
from restate_server.query.json_format import JsonRows
from restate_server.query.read_view import ReadView, flat_ranges
from restate_server.schema.model import Deployment, ServiceSchema
from restate_server.storage.db import Store

_ENGINE: QueryEngine | None = None


def engine() -> QueryEngine:
    """One engine for all tests (building the DataFusion session takes a while)."""
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = QueryEngine(64 * 1024 * 1024, batch_rows=4)
    return _ENGINE


class Opener:
    """A ``ViewOpener`` over a store (in tests the snapshot is taken on the caller's thread)."""

    def __init__(
        self,
        store: Store | None,
        *,
        partitions: int = 1,
        invoker: dict[bytes, InvokerState] | None = None,
        deployments: list[Deployment] | None = None,
        services: list[ServiceSchema] | None = None,
    ) -> None:
        self.store = store
        self.partitions = PartitionTable(partitions)
        self.invoker = invoker or {}
        self.deployments = deployments or []
        self.services = services or []
        # the ranges the last query asked for
        self.ranges: list[tuple[bytes, bytes]] = []
        # called right after the snapshot is taken (to write "concurrently")
        self.after_snapshot: Any = None

    def __call__(self, by_partition: dict[int, list[tuple[bytes, bytes]]]) -> ReadView:
        self.ranges = ranges = flat_ranges(by_partition)
        snapshot = _NoData() if self.store is None else self.store.snapshot(ranges)
        if self.after_snapshot is not None:
            self.after_snapshot()
        return ReadView(
            snapshot,  # type: ignore[arg-type]
            self.partitions,
            invoker=self.invoker,
            deployments=self.deployments,
            services=self.services,
            server_version="1.7.12",
        )


def view_of(store: Store, **kw: Any) -> Opener:
    return Opener(store, **kw)


class _NoData:
    """A snapshot of an empty store."""

    def items(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        return iter(())

    def values(self, start: bytes, end: bytes) -> Iterator[bytes]:
        return iter(())

    def get(self, key: bytes) -> bytes | None:
        return None

    def release(self) -> None:
        pass


def empty_view(**kw: Any) -> Opener:
    return Opener(None, **kw)


def json_rows(sql: str, view: Opener, query_engine: QueryEngine | None = None) -> list[Any]:
    body = (query_engine or engine()).execute(sql, view, JsonRows)
    return json.loads(body)["rows"]  # type: ignore[no-any-return]


def arrow_table(sql: str, view: Opener) -> pa.Table:
    body = engine().execute(sql, view, ArrowStream)
    return pa.ipc.open_stream(body).read_all()


class EmptyRegistry:
    """A registry with no deployments and no services (the views copy both)."""

    def list_deployments(self) -> list[Any]:
        return []

    def list_services(self) -> list[Any]:
        return []
