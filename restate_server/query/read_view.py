"""What one query reads: a durable storage snapshot plus copies of the in-memory views.

Everything a scan needs is in here, so scans run on any thread without touching live
objects. The snapshot is one instant for every partition of the process. With worker
processes each worker builds the view of its own partitions (its snapshot, its
invoker's tasks) and serves their scans from it; the supervisor's view
(``remote_view.RemoteView``) asks the owning worker for every partition's batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from restate_server.partition.table import PartitionTable
from restate_server.query.in_flight import InvokerState
from restate_server.schema.model import Deployment, ServiceSchema
from restate_server.storage.snapshot import Range, StoreSnapshot

if TYPE_CHECKING:
    import pyarrow as pa

    from restate_server.query.catalog import TableDef
    from restate_server.query.partition_scan import ScanRequest

# partition id -> the key ranges its scans read (a partition scanned from memory alone,
# sys_invocation_state, has none)
RangesByPartition = dict[int, list[Range]]


class QueryView(Protocol):
    """What the engine reads one query from: node-wide rows, and each partition's."""

    partitions: PartitionTable
    deployments: list[Deployment]
    services: list[ServiceSchema]
    server_version: str

    def partition_batches(
        self, table: TableDef, partition_id: int, request: ScanRequest
    ) -> Iterator[pa.RecordBatch]: ...

    def release(self) -> None: ...


@dataclass
class ReadView:
    snapshot: StoreSnapshot
    # which partition owns which partition keys
    partitions: PartitionTable
    # the invoker's tasks by raw invocation id (sys_invocation_state)
    invoker: dict[bytes, InvokerState] = field(default_factory=dict)
    # the registry's deployments and latest service revisions (sys_deployment, sys_service)
    deployments: list[Deployment] = field(default_factory=list)
    services: list[ServiceSchema] = field(default_factory=list)
    # reported as created_using_restate_version
    server_version: str = ""

    def partition_batches(
        self, table: TableDef, partition_id: int, request: ScanRequest
    ) -> Iterator[pa.RecordBatch]:
        scan = table.partition_scan
        return iter(()) if scan is None else scan(partition_id, request, self)

    def release(self) -> None:
        self.snapshot.release()


def flat_ranges(ranges: RangesByPartition) -> list[Range]:
    return [r for partition_ranges in ranges.values() for r in partition_ranges]


class ViewOpener(Protocol):
    """Opens a query's read view once its plan says which partitions it scans and which
    key ranges of each (they are opened at the snapshot's instant)."""

    @property
    def partitions(self) -> PartitionTable: ...

    def __call__(self, ranges: RangesByPartition) -> QueryView: ...
