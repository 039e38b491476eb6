"""Which partition owns a partition key.

The 64-bit partition-key space is cut into ``count`` contiguous ranges, as in
the real server; a partition owns one range in every table.
"""

from __future__ import annotations

KEY_SPACE = 1 << 64


class PartitionTable:
    def __init__(self, count: int) -> None:
        if count < 1:
            raise ValueError("at least one partition is needed")
        self.count = count

    def partition_of(self, partition_key: int) -> int:
        return (partition_key * self.count) >> 64

    def range_of(self, partition_id: int) -> tuple[int, int]:
        """[start, end) of the partition keys owned by ``partition_id``."""
        return (self._start(partition_id), self._start(partition_id + 1))

    def _start(self, partition_id: int) -> int:
        if partition_id >= self.count:
            return KEY_SPACE
        return -((-partition_id * KEY_SPACE) // self.count)
