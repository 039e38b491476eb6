"""The log-scale histogram behind every summary: slots, quantile error bound, windows,
and the upkeep that folds what the hot path appended."""

from __future__ import annotations

import asyncio
import math
import random

import pytest

from restate_server.metrics import upkeep
from restate_server.metrics.histogram import (
    WINDOW_S,
    HistogramData,
    LogHistogram,
    merge_histograms,
    slot_bounds,
    slot_estimate,
    slot_of,
)
from restate_server.metrics.upkeep import HistogramSet

# the documented bound: half a slot (in the geometric sense) of value + 1
MAX_RELATIVE_ERROR = 2 ** (1 / 32) - 1


def _filled(values: list[int]) -> LogHistogram:
    histogram = LogHistogram()
    histogram.values.extend(values)
    return histogram


def test_slots_hold_their_values_and_small_values_are_exact() -> None:
    rng = random.Random(7)
    values = [
        0,
        1,
        2,
        15,
        16,
        17,
        22,
        23,
        1023,
        1024,
        *(rng.randrange(1 << 44) for _ in range(2000)),
    ]
    for value in values:
        low, high = slot_bounds(slot_of(value))
        assert low <= value + 1e-9 and value < high + 1e-9, value
    for value in range(23):
        assert slot_estimate(slot_of(value)) == value
    assert len({slot_of(v) for v in range(23)}) == 23


def test_empty_window_has_no_quantiles() -> None:
    data = LogHistogram().snapshot(0.0)
    assert math.isnan(data.quantile(0.5))
    assert data.total_count == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_quantiles_stay_within_the_documented_error(seed: int) -> None:
    rng = random.Random(seed)
    # latencies from 20 us to a few seconds, in nanoseconds
    values = [int(rng.lognormvariate(math.log(2e6), 1.5)) + 20_000 for _ in range(20_000)]
    data = _filled(values).snapshot(0.0)
    ordered = sorted(values)
    for q in (0.5, 0.9, 0.99):
        exact = ordered[math.ceil(q * len(ordered)) - 1]
        estimate = data.quantile(q)
        assert abs(estimate - exact) / exact <= MAX_RELATIVE_ERROR, (q, exact, estimate)
    assert data.quantile(1.0) == max(values)
    assert data.total_sum == sum(values)
    assert data.total_count == len(values)


def test_small_counts_come_back_exact() -> None:
    data = _filled([1, 1, 2, 3, 9]).snapshot(0.0)
    assert data.quantile(0.5) == 2.0
    assert data.quantile(0.9) == 9.0
    assert data.quantile(1.0) == 9.0


def test_huge_and_negative_values() -> None:
    data = _filled([1 << 70, -5]).snapshot(0.0)  # a clock that went backwards counts as 0
    assert data.quantile(1.0) == float(1 << 70)
    assert data.quantile(0.5) == 0.0
    assert data.total_count == 2


def test_quantiles_cover_the_last_three_windows_totals_everything() -> None:
    histogram = LogHistogram()
    histogram.snapshot(0.0)  # the first snapshot starts the window clock
    histogram.record(1_000)
    assert histogram.snapshot(1.0).quantile(1.0) == 1_000  # same window
    t = WINDOW_S
    data = histogram.snapshot(t)  # rotated: the previous window still counts
    assert data.quantile(1.0) == 1_000
    histogram.record(5)  # in the new window
    data = histogram.snapshot(2 * t)
    assert data.window_count == 2
    assert data.quantile(1.0) == 1_000
    data = histogram.snapshot(3 * t)  # the window of the 1_000 is the fourth back now
    assert data.buckets == {slot_of(5): 1}
    assert data.quantile(1.0) == 5
    data = histogram.snapshot(4 * t)
    assert data.window_count == 0
    assert math.isnan(data.quantile(0.99))
    assert (data.total_count, data.total_sum) == (2, 1_005)


def test_a_late_snapshot_rotates_once() -> None:
    histogram = LogHistogram()
    histogram.snapshot(0.0)
    histogram.record(7)
    # nobody scraped for a long time: the data since the last rotation is one window
    assert histogram.snapshot(1_000.0).buckets == {slot_of(7): 1}


def test_merging_adds_windows_and_totals() -> None:
    a = HistogramData({5: 2, 40: 1}, window_max=60, total_sum=70, total_count=3)
    b = HistogramData({5: 1}, window_max=5, total_sum=105, total_count=4)
    merged = merge_histograms([a, b])
    assert merged.buckets == {5: 3, 40: 1}
    assert merged.window_max == 60
    assert (merged.total_sum, merged.total_count) == (175, 7)


def test_folding_keeps_the_list_the_hot_path_holds() -> None:
    histogram = LogHistogram()
    values = histogram.values  # as a caller caches it
    values.extend([3, 4])
    histogram.fold()
    values.append(5)
    assert histogram.snapshot(0.0).total_count == 3


async def test_the_upkeep_folds_busy_histograms_each_tick_and_the_others_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(upkeep, "FOLD_INTERVAL_S", 0.01)
    monkeypatch.setattr(upkeep, "FOLD_AT", 2)
    histograms = HistogramSet()
    busy, quiet = histograms.new(), histograms.new()
    busy.values.extend([1, 2, 3])
    quiet.values.append(10)
    histograms.start(asyncio.get_running_loop())
    try:
        await asyncio.sleep(0.05)  # a few ticks, not yet the full fold of every 10th
        assert (busy.values, busy.count, busy.sum) == ([], 3, 6)
        assert quiet.values == [10]
        await asyncio.sleep(0.2)
        assert (quiet.values, quiet.count) == ([], 1)
    finally:
        histograms.stop()
