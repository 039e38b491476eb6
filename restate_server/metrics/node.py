"""The metrics of one node process: its components' counters and the gauges read live.

The server makes one :class:`NodeMetrics` when Prometheus is enabled, hands each
component its own counters (the ingress one, each partition and each partition's
invoker their own) and registers *sources*: functions that build families at scrape
time, from the counters or from live state (queue lengths, armed timers, the invoker's
tasks, the connection pool). A node whose partitions run in other processes would add
one source per process that returns that process's snapshot; :meth:`families` merges
whatever the sources return.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from restate_server.metrics import names
from restate_server.metrics.commit import CommitMetrics
from restate_server.metrics.families import Family, family, merge, summary
from restate_server.metrics.ingress import IngressMetrics
from restate_server.metrics.invoker import InvokerMetrics, TaskView, invocation_gauges
from restate_server.metrics.partition import CommandDurations, PartitionMetrics
from restate_server.metrics.upkeep import HistogramSet

Source = Callable[[float], Iterable[Family]]


class PartitionView(Protocol):
    """What the partition gauges read from a running partition processor."""

    @property
    def metrics(self) -> PartitionMetrics | None: ...

    @property
    def queued_commands(self) -> int: ...

    @property
    def timers_armed(self) -> int: ...


class PoolView(Protocol):
    connections_opened: int
    streams_opened: int

    def open_connections(self) -> dict[str, int]: ...


class MemtableView(Protocol):
    def memtable_bytes(self) -> tuple[int, int]: ...


class NodeMetrics:
    def __init__(self) -> None:
        # every histogram of this process (one event loop), folded by one upkeep timer
        self.histograms = histograms = HistogramSet()
        self.ingress = IngressMetrics(histograms)
        self.commit = CommitMetrics(histograms)
        # node-wide in the real server (no partition label): shared by this process's
        # partitions, and reported once
        self.command_durations = CommandDurations(histograms)
        self.task_duration = histograms.new()
        # indexed by partition id, for the partitions this process runs
        self.partitions: list[PartitionMetrics] = []
        self.invokers: list[InvokerMetrics] = []
        self._sources: list[Source] = [
            self.ingress.families,
            self.commit.families,
            self._invoker_families,
        ]

    def add_partitions(self, count: int) -> None:
        for pid in range(len(self.partitions), count):
            self.partitions.append(PartitionMetrics(pid, self.command_durations))
            self.invokers.append(InvokerMetrics(pid, self.task_duration))

    def add_source(self, source: Source) -> None:
        self._sources.append(source)

    def families(self) -> list[Family]:
        now = time.monotonic()
        return merge(source(now) for source in self._sources)

    def _invoker_families(self, now: float) -> list[Family]:
        out = [fam for invoker in self.invokers for fam in invoker.families(now)]
        out.append(summary(names.INVOKER_TASK_DURATION, [((), self.task_duration.snapshot(now))]))
        out.extend(self.command_durations.families(now))
        return out

    # ---- live state, read at scrape time

    def watch_partitions(self, processors: Sequence[PartitionView], partition_count: int) -> None:
        def source(now: float) -> list[Family]:
            out = [
                family(names.NUM_PARTITIONS, [((), partition_count)]),
                family(names.NUM_ACTIVE_PARTITIONS, [((), len(processors))]),
                family(names.NUM_ACTIVE_PARTITION_LEADERS, [((), len(processors))]),
            ]
            for processor in processors:
                metrics = processor.metrics
                if metrics is not None:
                    out.extend(
                        metrics.families(now, processor.queued_commands, processor.timers_armed)
                    )
            return out

        self.add_source(source)

    def watch_invoker_tasks(self, tasks: Callable[[], Iterable[TaskView]]) -> None:
        self.add_source(lambda now: [invocation_gauges(tasks())])

    def watch_store(self, store: MemtableView) -> None:
        """This process's store: the real server's one database of partition tables
        is labelled ``db="db"``; the workers' stores add up under that label."""
        labels = (("db", "db"),)

        def source(now: float) -> list[Family]:
            total, unflushed = store.memtable_bytes()
            return [
                family(names.ROCKSDB_MEMTABLE_BYTES, [(labels, total)]),
                family(names.ROCKSDB_MEMTABLE_UNFLUSHED_BYTES, [(labels, unflushed)]),
            ]

        self.add_source(source)

    def watch_pool(self, pool: PoolView) -> None:
        def source(now: float) -> list[Family]:
            return [
                family(names.POOL_CONNECTION_OPENED, [((), pool.connections_opened)]),
                family(names.POOL_STREAM_OPENED, [((), pool.streams_opened)]),
                family(
                    names.H2_CONNECTIONS,
                    [
                        ((("origin", origin),), count)
                        for origin, count in sorted(pool.open_connections().items())
                    ],
                ),
            ]

        self.add_source(source)
