"""What one query reads: a durable storage snapshot plus copies of the in-memory views.

Everything a scan needs is in here, so scans run on any thread without touching live
objects. The snapshot is one instant for every partition. Once partitions live in
worker processes, each worker builds the view of its own partitions (its snapshot, its
invoker's tasks) and serves scans from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from restate_server.partition.table import PartitionTable
from restate_server.query.in_flight import InvokerState
from restate_server.schema.model import Deployment, ServiceSchema
from restate_server.storage.snapshot import Range, StoreSnapshot


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

    def release(self) -> None:
        self.snapshot.release()


class ViewOpener(Protocol):
    """Opens a query's read view once its plan says which key ranges it scans (they are
    opened at the snapshot's instant)."""

    @property
    def partitions(self) -> PartitionTable: ...

    def __call__(self, ranges: list[Range]) -> ReadView: ...
