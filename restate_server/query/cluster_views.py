"""A cluster node's side of ``/query``: every partition, wherever it is led.

The node asked plans and executes the query (one DataFusion, one result). Each
partition is read where it is led right now: the partitions this node leads from a
snapshot of its own store (as a single server does), the others from their leaders
over the fabric links, page by page (as the supervisor reads its workers'). A
partition that nobody leads at this moment (its leader died and the lease has not run
out yet) fails the query with a 503 that says to try again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from restate_server.partition.table import PartitionTable
from restate_server.query.errors import QueryFailed
from restate_server.query.read_view import QueryView, RangesByPartition
from restate_server.query.remote_view import RemoteView, WorkerViews
from restate_server.workers.link import PeerLink

if TYPE_CHECKING:
    import pyarrow as pa

    from restate_server.query.catalog import TableDef
    from restate_server.query.partition_scan import ScanRequest

# (ranges) -> a view of this node's own store (``service.local_views``)
LocalViewMaker = Callable[[RangesByPartition], Any]
# partition id -> the node that leads it now, or None
LeaderOf = Callable[[int], str | None]


class ClusterViews:
    """The node's ``ViewMaker`` (see ``service.QueryService``)."""

    def __init__(
        self,
        partitions: PartitionTable,
        node_name: str,
        leader_of: LeaderOf,
        link_to: Callable[[str], PeerLink | None],
        local_views: LocalViewMaker,
        registry: Any,
        server_version: str,
    ) -> None:
        self._partitions = partitions
        self._node_name = node_name
        self._leader_of = leader_of
        self._link_to = link_to
        self._local_views = local_views
        self._remote_views = WorkerViews(partitions, self._link_of, registry, server_version)

    async def __call__(self, ranges: RangesByPartition) -> SplitView:
        here = {p for p in range(self._partitions.count) if self._leader_of(p) == self._node_name}
        elsewhere = {p: found for p, found in ranges.items() if p not in here}
        local = await self._local_views({p: found for p, found in ranges.items() if p in here})
        try:
            remote = await self._remote_views(elsewhere)
        except BaseException:
            local.release()
            raise
        return SplitView(local, remote, here)

    def _link_of(self, partition_id: int) -> PeerLink:
        leader = self._leader_of(partition_id)
        link = self._link_to(leader) if leader is not None else None
        if link is None:
            raise QueryFailed(
                503,
                f"partition {partition_id} has no leader at the moment (a node is taking "
                "it over): try again in a few seconds",
            )
        return link


class SplitView:
    """One query's view: this node's partitions from its snapshot, the rest remote."""

    def __init__(self, local: QueryView, remote: RemoteView, here: set[int]) -> None:
        self._local = local
        self._remote = remote
        self._here = here
        self.partitions = local.partitions
        self.deployments = local.deployments
        self.services = local.services
        self.server_version = local.server_version

    def partition_batches(
        self, table: TableDef, partition_id: int, request: ScanRequest
    ) -> Iterator[pa.RecordBatch]:
        view: Any = self._local if partition_id in self._here else self._remote
        return view.partition_batches(table, partition_id, request)  # type: ignore[no-any-return]

    def release(self) -> None:
        self._local.release()
        self._remote.release()
