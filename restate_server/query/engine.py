"""DataFusion over our tables: plan the statement as sent, read what the plan needs.

One session, kept for the life of the server, holds a ``TableSource`` for every table.
A query binds the sources to its read view, lets DataFusion parse and plan the
statement (no rewriting of ours: the CLI relies on DataFusion's dialect), reads the
optimized plan's table scans to give each source its hints, then executes the same
plan and encodes the batches as they come. Queries run one at a time on the query
thread, so the sources can be rebound per query.

Read-only by construction: the SQL options refuse DDL (CREATE, DROP), DML (INSERT,
COPY) and statements (SET, PREPARE), and no source can be written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

import datafusion
import pyarrow as pa

from restate_server.query.catalog import TABLE_NAMES, TABLES, ranges_by_partition, scan_table
from restate_server.query.errors import QueryFailed, from_datafusion, too_large
from restate_server.query.partition_scan import ScanRequest
from restate_server.query.plan_scans import TableReads, plan_reads
from restate_server.query.read_view import QueryView, ViewOpener
from restate_server.query.source import TableSource

# the real server's session: catalog "restate", schema "public", information_schema on
CATALOG = "restate"
SCHEMA = "public"


class ResultWriter(Protocol):
    size: int

    def write(self, batch: pa.RecordBatch) -> None: ...

    def finish(self) -> bytes: ...


class QueryCancelled(Exception):
    """The server is shutting down: the running query stops at its next batch."""


class _Binding:
    """The read view the sources of the running query read from."""

    view: QueryView | None = None
    cancelled = False
    # a scan's own failure (a worker went away): reported as it is, not as DataFusion's
    failure: QueryFailed | None = None

    def scan(self, table: str) -> Callable[[ScanRequest], Iterator[pa.RecordBatch]]:
        definition = TABLES[table]

        def read(request: ScanRequest) -> Iterator[pa.RecordBatch]:
            view = self.view
            if view is None:  # pragma: no cover - sources are only scanned inside a query
                raise RuntimeError("no query is running")
            try:
                for batch in scan_table(definition, request, view):
                    if self.cancelled:
                        raise QueryCancelled("the server is shutting down")
                    yield batch
            except QueryFailed as failed:
                self.failure = failed
                raise

        return read


class QueryEngine:
    def __init__(self, memory_limit: int, batch_rows: int = 1024) -> None:
        self.memory_limit = memory_limit
        config = (
            datafusion.SessionConfig()
            .with_information_schema(True)
            .with_default_catalog_and_schema(CATALOG, SCHEMA)
            .with_batch_size(batch_rows)
            # our sources are read by one thread holding the GIL: more partitions would
            # only add threads waiting for it
            .with_target_partitions(1)
        )
        runtime = (
            datafusion.RuntimeEnvBuilder()
            .with_greedy_memory_pool(memory_limit)
            .with_disk_manager_disabled()
        )
        self._ctx = datafusion.SessionContext(config, runtime)
        self._options = (
            datafusion.SQLOptions()
            .with_allow_ddl(False)
            .with_allow_dml(False)
            .with_allow_statements(False)
        )
        self._binding = _Binding()
        self._sources: dict[str, TableSource] = {}
        for name, table in TABLES.items():
            source = TableSource(name, table.schema, self._binding.scan(name), None, batch_rows)
            self._sources[name] = source
            self._ctx.register_dataset(name, source)

    def plan(self, sql: str) -> dict[str, TableReads]:
        """What ``sql`` would read from each table (planning only; raises ``QueryFailed``)."""
        try:
            frame = self._ctx.sql_with_options(sql, self._options)
            return plan_reads(frame.optimized_logical_plan(), TABLE_NAMES)
        except Exception as exc:
            raise from_datafusion(exc) from None

    def cancel(self) -> None:
        """Stop the running query (and any later one); safe from any thread."""
        self._binding.cancelled = True

    def execute(
        self, sql: str, open_view: ViewOpener, writer_for: Callable[[pa.Schema], ResultWriter]
    ) -> bytes:
        """Run ``sql``; the encoded result (raises ``QueryFailed``).

        The read view is opened once the plan is known, with an iterator over every key
        range the plan's scans read, all at the snapshot's instant (with worker
        processes: each worker's own instant).
        """
        try:
            frame = self._ctx.sql_with_options(sql, self._options)
            reads = plan_reads(frame.optimized_logical_plan(), TABLE_NAMES)
        except Exception as exc:
            raise from_datafusion(exc) from None
        view = open_view(ranges_by_partition(reads, open_view.partitions))
        self._binding.view = view
        self._binding.failure = None
        try:
            # the same plan executes: its scans now know what they may skip
            for name, source in self._sources.items():
                source.set_reads(reads.get(name))
            return self._collect(frame, writer_for)
        finally:
            self._binding.view = None
            for source in self._sources.values():
                source.set_reads(None)
            view.release()

    def _collect(
        self, frame: datafusion.DataFrame, writer_for: Callable[[pa.Schema], ResultWriter]
    ) -> bytes:
        try:
            writer: ResultWriter | None = None
            schema: pa.Schema | None = None
            for batch in frame.execute_stream():
                arrow = batch.to_pyarrow()
                if writer is None:
                    # the batches' own schema: the plan's may differ in nested nullability
                    schema = arrow.schema
                    writer = writer_for(schema)
                elif arrow.schema != schema:
                    arrow = arrow.cast(schema)
                writer.write(arrow)
                if writer.size > self.memory_limit:
                    raise too_large(self.memory_limit)
            if writer is None:  # no rows: the schema alone
                writer = writer_for(frame.schema())
            return writer.finish()
        except QueryFailed:
            raise
        except Exception as exc:
            failure = self._binding.failure
            if failure is not None:
                raise failure from None
            raise from_datafusion(exc) from None
