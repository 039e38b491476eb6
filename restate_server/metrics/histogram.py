"""A log-scale histogram for durations and sizes, fed from the hot path by ``list.append``.

The hot path appends raw values (non-negative ints: nanoseconds, or counts) to
``histogram.values`` and does nothing else: no function call, a handful of bytecodes.
Measured by counting bytecodes, the whole server runs some 9,000 per greet, so every
one spent on metrics shows; binning values one by one in Python cost 11 % of them.

:meth:`LogHistogram.fold` (called by the upkeep, see ``upkeep``, and before every
snapshot) bins them in batches, mostly in C: it sorts the values, then walks the sorted
list a *slot* at a time (two ``bisect`` calls per slot present, not a loop per value);
``sum`` and the last element give the totals. Slots are geometric, 16 per power of two,
with integer edges ``BOUNDS[k] = ceil(2**(k/16) - 1)``: a slot spans a factor of
2**(1/16) of ``value + 1``, so a quantile read back as the geometric middle of its slot
is within 2**(1/32) - 1 = **2.2 %** of the true value of that rank (the ``q * n``-th,
rounded up); values up to 22 have slots of their own and come back exact;
``quantile="1"`` is the exact maximum.

Quantiles cover a rolling window, as in the real server (its summaries keep the last
three 20-second buckets): the counts are rotated when a snapshot is taken and at least
``WINDOW_S`` have passed since the last rotation, and a snapshot merges the current
window with the previous two. ``_sum`` and ``_count`` are totals since the start.
Everything here runs on one thread (the event loop), so nothing is locked.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterable

import msgspec

SLOTS_PER_OCTAVE = 16
MAX_SLOT = 64 * SLOTS_PER_OCTAVE  # from 2**64 - 1 up, one last slot
# the smallest value of each slot (slots between two equal edges hold no integer), and
# an end past every value
BOUNDS: list[float] = [
    *(math.ceil(2 ** (slot / SLOTS_PER_OCTAVE) - 1) for slot in range(MAX_SLOT + 1)),
    math.inf,
]
# durations are recorded in nanoseconds of this clock
clock_ns = time.perf_counter_ns
WINDOW_S = 20.0
WINDOWS = 3
# the quantiles the real server reports (its label values, "1" being the maximum)
QUANTILES: tuple[tuple[str, float], ...] = (("0.5", 0.5), ("0.9", 0.9), ("0.99", 0.99), ("1", 1.0))


def slot_of(value: int) -> int:
    return bisect_right(BOUNDS, value) - 1 if value > 0 else 0


def slot_bounds(slot: int) -> tuple[float, float]:
    """The values ``[low, high)`` of ``slot`` (``high`` is infinite for the last one)."""
    return BOUNDS[slot], BOUNDS[slot + 1]


def slot_estimate(slot: int) -> float:
    """The value a slot stands for: its only integer, else its geometric middle."""
    low, high = slot_bounds(slot)
    if high - low <= 1:
        return float(low)
    middle = 2 ** ((slot + 0.5) / SLOTS_PER_OCTAVE) - 1
    return max(float(low), min(middle, high - 1))


class HistogramData(msgspec.Struct, frozen=True):
    """A snapshot: the window's counts by slot, its maximum, and the totals."""

    buckets: dict[int, int]
    window_max: int
    total_sum: int
    total_count: int

    @property
    def window_count(self) -> int:
        return sum(self.buckets.values())

    def quantile(self, q: float) -> float:
        """The value below which a fraction ``q`` of the window's values fall (NaN if empty)."""
        total = self.window_count
        if total == 0:
            return math.nan
        if q >= 1.0:
            return float(self.window_max)
        rank = max(1, math.ceil(q * total))
        seen = 0
        for slot in sorted(self.buckets):
            seen += self.buckets[slot]
            if seen >= rank:
                return min(slot_estimate(slot), float(self.window_max))
        return float(self.window_max)  # pragma: no cover - rank <= total


def merge_histograms(parts: Iterable[HistogramData]) -> HistogramData:
    buckets: dict[int, int] = {}
    window_max = total_sum = total_count = 0
    for part in parts:
        for slot, count in part.buckets.items():
            buckets[slot] = buckets.get(slot, 0) + count
        window_max = max(window_max, part.window_max)
        total_sum += part.total_sum
        total_count += part.total_count
    return HistogramData(buckets, window_max, total_sum, total_count)


class LogHistogram:
    __slots__ = ("_counts", "_max", "_older", "_rotated_at", "count", "sum", "values")

    def __init__(self) -> None:
        # appended to by the hot path; emptied (in place: callers may hold it) by fold
        self.values: list[int] = []
        self._counts: dict[int, int] = {}  # the current window, by slot
        self._max = 0
        self.sum = 0
        self.count = 0
        # previous windows, newest first: (counts by slot, maximum); None when empty
        self._older: list[tuple[dict[int, int], int] | None] = []
        self._rotated_at: float | None = None  # set by the first snapshot

    def record(self, value: int) -> None:
        """For callers off the hot path (the hot path appends to ``values`` itself)."""
        self.values.append(value)

    def fold(self) -> None:
        """Bin the values appended since the last fold."""
        values = self.values
        if not values:
            return
        values.sort()
        if values[0] < 0:  # a clock that went backwards: counts as 0
            values[:] = [max(value, 0) for value in values]
        total = len(values)
        self.count += total
        self.sum += sum(values)
        if values[-1] > self._max:
            self._max = values[-1]
        counts = self._counts
        index = 0
        while index < total:
            slot = bisect_right(BOUNDS, values[index]) - 1
            following = bisect_left(values, BOUNDS[slot + 1], index)
            counts[slot] = counts.get(slot, 0) + following - index
            index = following
        values.clear()

    def snapshot(self, now: float) -> HistogramData:
        """The current window and the previous ones; rotates first if a window is over."""
        self.fold()
        if self._rotated_at is None:
            self._rotated_at = now
        elif now - self._rotated_at >= WINDOW_S:
            self._rotate(now)
        buckets = dict(self._counts)
        window_max = self._max
        for window in self._older:
            if window is not None:
                for slot, count in window[0].items():
                    buckets[slot] = buckets.get(slot, 0) + count
                window_max = max(window_max, window[1])
        return HistogramData(buckets, window_max, self.sum, self.count)

    def _rotate(self, now: float) -> None:
        current = None
        if self._counts:
            current = (self._counts, self._max)
            self._counts = {}
        self._older.insert(0, current)
        del self._older[WINDOWS - 1 :]
        self._max = 0
        self._rotated_at = now
