"""The invoker's counters for one partition (the real server runs one invoker per
partition and labels its series ``partition_id``).

An invocation *task* is one attempt: ``started`` when it begins, then ``completed``
(the SDK sent End), ``suspended`` (Suspension), or ``failed`` with ``transient="true"``
when it will be retried and ``transient="false"`` when the retry policy gave up (the
invocation is paused or killed) or the SDK asked not to retry. Attempts the partition
aborts count as started only, as in the real server. ``enqueue`` counts the
partition's requests to run an invocation (first run, resumption after suspension).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from restate_server.metrics import names
from restate_server.metrics.families import Family, Labels, family
from restate_server.metrics.histogram import LogHistogram


class InvokerMetrics:
    __slots__ = (
        "completed",
        "enqueued",
        "failed_final",
        "failed_transient",
        "partition_id",
        "refused_resends",
        "retries",
        "started",
        "suspended",
        "task_duration",
    )

    def __init__(self, partition_id: int, task_duration: LogHistogram | None = None) -> None:
        self.partition_id = partition_id
        self.enqueued = 0
        self.started = 0
        self.completed = 0
        self.suspended = 0
        self.failed_transient = 0
        self.failed_final = 0
        self.retries = 0
        self.refused_resends = 0
        # nanoseconds per attempt: the invocation task appends to ``task_duration.values``
        # when an attempt ends, whatever its outcome. The real server's summary is
        # node-wide (no labels): the partitions of a process share one.
        self.task_duration = task_duration if task_duration is not None else LogHistogram()

    def families(self, now: float) -> list[Family]:
        pid = ("partition_id", str(self.partition_id))
        tasks = [
            ((("status", "started"), pid), self.started),
            ((("status", "completed"), pid), self.completed),
            ((("status", "suspended"), pid), self.suspended),
            ((("status", "failed"), ("transient", "true"), pid), self.failed_transient),
            ((("status", "failed"), ("transient", "false"), pid), self.failed_final),
        ]
        # series appear once they have counted something, as in the real server
        return [
            family(names.INVOKER_ENQUEUE, _nonzero([((pid,), self.enqueued)])),
            family(names.INVOKER_INVOCATION_TASKS, _nonzero(tasks)),
            family(names.INVOKER_RETRIES, _nonzero([((pid,), self.retries)])),
            family(names.INVOKER_REFUSED_RESENDS, _nonzero([((pid,), self.refused_resends)])),
        ]


def _nonzero(values: list[tuple[Labels, float]]) -> list[tuple[Labels, float]]:
    return [v for v in values if v[1]]


class TaskView(Protocol):
    """What the gauges read from a running invocation task."""

    @property
    def partition_id(self) -> int: ...

    @property
    def next_retry_at(self) -> int | None: ...


def invocation_gauges(tasks: Iterable[TaskView]) -> Family:
    """``restate_py_invocations``: the invoker's in-memory tasks by status, per partition."""
    counts: dict[tuple[str, int], int] = {}
    for task in tasks:
        key = ("running" if task.next_retry_at is None else "backing_off", task.partition_id)
        counts[key] = counts.get(key, 0) + 1
    return family(
        names.INVOCATIONS,
        (
            ((("status", status), ("partition_id", str(pid))), count)
            for (status, pid), count in sorted(counts.items())
        ),
    )
