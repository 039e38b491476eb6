"""Group-commit counters: how long each RocksDB batch takes and how much it carries.

The committer thread measures a batch (write plus sync) and hands the figures to the
event loop together with the batch's callbacks, in the same ``call_soon_threadsafe``;
they are recorded there, so the histograms are only ever touched by the loop.
"""

from __future__ import annotations

from restate_server.metrics import names
from restate_server.metrics.families import Family, summary
from restate_server.metrics.upkeep import HistogramSet, new_histogram


class CommitMetrics:
    __slots__ = ("batch_writes", "duration")

    def __init__(self, histograms: HistogramSet | None = None) -> None:
        self.duration = new_histogram(histograms)  # nanoseconds per RocksDB write (synced)
        self.batch_writes = new_histogram(histograms)  # partition groups per RocksDB write

    def committed(self, elapsed_ns: int, groups: int) -> None:
        self.duration.values.append(elapsed_ns)
        self.batch_writes.values.append(groups)

    def families(self, now: float) -> list[Family]:
        return [
            summary(names.COMMIT_DURATION, [((), self.duration.snapshot(now))]),
            summary(names.COMMIT_BATCH_WRITES, [((), self.batch_writes.snapshot(now))]),
        ]
