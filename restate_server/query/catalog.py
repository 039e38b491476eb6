"""Every table of ``/query`` and where its rows come from.

Partitioned tables are read partition by partition (``PartitionScan``); the registry
tables once. Tables the real server has but this server keeps no data for (vqueues,
limits, locks of scoped services...) exist with their real schema and no rows, so
queries and the CLI's column probes see the same catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from restate_server.partition.table import PartitionTable
from restate_server.protocol.errors import InvalidIdError
from restate_server.protocol.ids import InvocationId, partition_key_for_key
from restate_server.query.hints import ScanHints
from restate_server.query.partition_scan import PartitionRanges, PartitionScan, ScanRequest
from restate_server.query.plan_scans import TableReads
from restate_server.query.read_view import QueryView, RangesByPartition, flat_ranges
from restate_server.query.schemas import SCHEMAS
from restate_server.query.tables import (
    inbox,
    invocation_state,
    invocations,
    journal,
    keyed_service_status,
    promise,
    registry,
    state,
)
from restate_server.query.tables.keyed import instance_ranges
from restate_server.storage import keys
from restate_server.storage.snapshot import Range

GlobalScan = Callable[[ScanRequest, QueryView], Iterator[pa.RecordBatch]]


@dataclass(frozen=True)
class TableDef:
    name: str
    schema: pa.Schema
    # exactly one of the two: rows per partition, or rows of the whole node
    partition_scan: PartitionScan | None = None
    global_scan: GlobalScan | None = None
    # the key ranges a partition scan reads (opened with the query's snapshot)
    ranges: PartitionRanges | None = None
    # the columns holding an invocation id / an object key (to pick partitions)
    id_column: str | None = None
    key_column: str | None = None


def _partitioned(
    name: str,
    scan: PartitionScan,
    ranges: PartitionRanges,
    *,
    id_column: str | None = None,
    key_column: str | None = None,
) -> TableDef:
    return TableDef(
        name,
        SCHEMAS[name],
        partition_scan=scan,
        ranges=ranges,
        id_column=id_column,
        key_column=key_column,
    )


def _instance_ranges(tag: bytes) -> RangesByPartition:
    return lambda hints, partitions, partition_id: instance_ranges(
        tag, hints, partitions, partition_id
    )


def _no_ranges(hints: ScanHints, partitions: PartitionTable, partition_id: int) -> list[Range]:
    return []  # rows from memory (the invoker's tasks)


TABLES: dict[str, TableDef] = {
    table.name: table
    for table in (
        _partitioned("state", state.scan, _instance_ranges(keys.STATE), key_column="service_key"),
        _partitioned(
            "sys_inbox", inbox.scan, _instance_ranges(keys.INBOX), key_column="service_key"
        ),
        _partitioned(
            "sys_keyed_service_status",
            keyed_service_status.scan,
            _instance_ranges(keys.KEY_LOCK),
            key_column="service_key",
        ),
        _partitioned(
            "sys_promise", promise.scan, _instance_ranges(keys.PROMISES), key_column="service_key"
        ),
        _partitioned(
            "sys_invocation_status",
            invocations.scan_status,
            invocations.status_table_ranges,
            id_column="id",
            key_column="target_service_key",
        ),
        _partitioned(
            "sys_invocation",
            invocations.scan_invocation,
            invocations.invocation_table_ranges,
            id_column="id",
            key_column="target_service_key",
        ),
        _partitioned("sys_invocation_state", invocation_state.scan, _no_ranges, id_column="id"),
        _partitioned("sys_journal", journal.scan, journal.journal_ranges, id_column="id"),
        TableDef(
            "sys_deployment", SCHEMAS["sys_deployment"], global_scan=registry.scan_deployments
        ),
        TableDef("sys_service", SCHEMAS["sys_service"], global_scan=registry.scan_services),
    )
}
# the real server's other tables: same schema, no rows here
for _name in SCHEMAS:
    TABLES.setdefault(_name, TableDef(_name, SCHEMAS[_name]))

TABLE_NAMES = frozenset(TABLES)


def partitions_to_scan(table: TableDef, hints: ScanHints, partitions: PartitionTable) -> list[int]:
    """The partitions that can hold rows matching ``hints``, in partition order."""
    keys_: set[int] = set()
    narrowed = False
    ids = hints.values(table.id_column) if table.id_column else None
    if ids is not None:
        narrowed = True
        for text in ids:
            try:
                keys_.add(InvocationId.from_str(text).partition_key)
            except (InvalidIdError, AttributeError):
                continue
    else:
        instance_keys = hints.values(table.key_column) if table.key_column else None
        if instance_keys is not None:
            narrowed = True
            keys_ = {partition_key_for_key("", k) for k in instance_keys if isinstance(k, str)}
    pks = hints.values("partition_key")
    if pks is not None:
        wanted = {pk for pk in pks if isinstance(pk, int) and 0 <= pk < 1 << 64}
        keys_ = keys_ & wanted if narrowed else wanted
        narrowed = True
    if not narrowed:
        return list(range(partitions.count))
    return sorted({partitions.partition_of(pk) for pk in keys_})


def ranges_by_partition(
    reads: dict[str, TableReads], partitions: PartitionTable
) -> RangesByPartition:
    """Every partition the planned scans read, with every key range of it they read
    (once per scan): opened with the snapshot."""
    by_partition: RangesByPartition = {}
    for name, read in reads.items():
        table = TABLES[name]
        if table.ranges is None:
            continue
        for partition_id in partitions_to_scan(table, read.hints, partitions):
            opened = by_partition.setdefault(partition_id, [])
            opened.extend(table.ranges(read.hints, partitions, partition_id) * read.scans)
    return by_partition


def ranges_to_read(reads: dict[str, TableReads], partitions: PartitionTable) -> list[Range]:
    """Every key range the planned scans read, once per scan."""
    return flat_ranges(ranges_by_partition(reads, partitions))


def scan_table(table: TableDef, request: ScanRequest, view: QueryView) -> Iterator[pa.RecordBatch]:
    """All of a table's batches: partition after partition, or the node-wide rows."""
    if table.global_scan is not None:
        yield from table.global_scan(request, view)
        return
    if table.partition_scan is None:
        return
    for partition_id in partitions_to_scan(table, request.hints, view.partitions):
        yield from view.partition_batches(table, partition_id, request)
