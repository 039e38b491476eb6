"""A table as DataFusion sees it: a pyarrow dataset that reads lazily, batch by batch.

DataFusion's Python bindings scan a ``pyarrow.dataset.Dataset`` through three calls:
``dataset.scanner(columns, filter)`` (for the schema), ``dataset.get_fragments()`` and
``fragment.scanner(...).to_batches()``, pulled one batch at a time, taking the GIL for
each. ``TableSource`` answers them itself: its single fragment's batches come straight
from the partition scans, computed when DataFusion asks for them, so a LIMIT stops the
reading and a big table never sits in memory as a whole. Every scan starts again from
the snapshot, so a table scanned twice in one plan (a self join) reads twice.

The predicates DataFusion pushed into the scan (``filter``) were promised to be applied
exactly; they are applied here, on each batch, with pyarrow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from restate_server.query.hints import NO_HINTS
from restate_server.query.partition_scan import ScanRequest
from restate_server.query.plan_scans import TableReads

# (request) -> the table's batches with exactly request.columns
Reader = Callable[[ScanRequest], Iterator[pa.RecordBatch]]


class TableSource(ds.InMemoryDataset):
    """The dataset registered for one table of one query."""

    def __init__(
        self,
        table: str,
        schema: pa.Schema,
        reader: Reader,
        reads: TableReads | None,
        batch_rows: int,
    ) -> None:
        super().__init__(schema.empty_table())
        self._table = table
        self._schema = schema
        self._reader = reader
        self._reads = reads
        self._batch_rows = batch_rows

    @property
    def schema(self) -> pa.Schema:  # type: ignore[override]
        return self._schema

    def set_reads(self, reads: TableReads | None) -> None:
        """What the running query's plan reads from this table (its scans' hints)."""
        self._reads = reads

    def scanner(self, columns: list[str] | None = None, filter: Any = None, **_: Any) -> _Scan:  # type: ignore[override]
        return _Scan(self, columns, filter)

    def get_fragments(self, filter: Any = None) -> list[_Fragment]:  # type: ignore[override]
        return [_Fragment(self)]

    def batches(self, columns: list[str] | None, filter: Any) -> Iterator[pa.RecordBatch]:
        """The rows DataFusion asked for: ``filter`` applied, ``columns`` projected."""
        schema = self._schema
        wanted = schema.names if columns is None else columns
        needed = set(wanted)
        if filter is not None:
            used = None if self._reads is None else self._reads.filter_columns
            needed |= set(schema.names) if used is None else used
        hints = NO_HINTS if self._reads is None else self._reads.hints
        limit = hints.limit
        if filter is not None:
            # the scan's limit counts rows after the filter, which only this class applies
            hints = hints.without_limit()
        batch_rows = self._batch_rows
        if hints.limit is not None:
            batch_rows = max(1, min(batch_rows, hints.limit))
        request = ScanRequest(
            self._table,
            tuple(name for name in schema.names if name in needed),
            hints,
            batch_rows,
        )
        produced = 0
        for batch in self._reader(request):
            if filter is not None:
                batch = batch.filter(filter)
            if batch.num_rows == 0:
                continue
            if limit is not None and produced + batch.num_rows > limit:
                batch = batch.slice(0, limit - produced)
            produced += batch.num_rows
            # give the GIL away now, to the event loop if it waits: it would otherwise
            # wait for Python's switch interval, or longer with more threads waiting
            time.sleep(0)
            yield batch.select(wanted)
            if limit is not None and produced >= limit:
                return


class _Scan:
    """What ``scanner()`` returns: the projected schema and the batches."""

    def __init__(self, source: TableSource, columns: list[str] | None, filter: Any) -> None:
        self._source = source
        self._columns = columns
        self._filter = filter
        schema = source.schema
        self.projected_schema = (
            schema if columns is None else pa.schema([schema.field(c) for c in columns])
        )

    def to_batches(self) -> Iterator[pa.RecordBatch]:
        return self._source.batches(self._columns, self._filter)


class _Fragment:
    def __init__(self, source: TableSource) -> None:
        self._source = source

    def scanner(
        self, schema: Any = None, columns: list[str] | None = None, filter: Any = None, **_: Any
    ) -> _Scan:
        return _Scan(self._source, columns, filter)
