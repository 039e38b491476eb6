"""Routing commands to the partition that owns a partition key."""

from __future__ import annotations

from restate_server.partition.processor import PartitionProcessor
from restate_server.partition.table import PartitionTable


class Partitions:
    def __init__(self, table: PartitionTable, processors: list[PartitionProcessor]) -> None:
        self.table = table
        self.processors = processors

    def for_partition_key(self, partition_key: int) -> PartitionProcessor:
        return self.processors[self.table.partition_of(partition_key)]

    def for_invocation(self, invocation_id: bytes) -> PartitionProcessor:
        return self.processors[self.table.partition_of(int.from_bytes(invocation_id[:8], "big"))]
