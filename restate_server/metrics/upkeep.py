"""The histograms of one event loop, folded on a timer.

The hot path only appends raw values to ``histogram.values`` (see ``histogram``); this
bins them, so that the lists stay short even when nobody scrapes. Every
``FOLD_INTERVAL_S`` it folds the histograms holding at least ``FOLD_AT`` values, and
every ``FULL_FOLD_TICKS`` ticks all of them: a fold costs little per value when many
values share each slot, so busy histograms fold every second and quiet ones wait (at
most ``FOLD_INTERVAL_S * FULL_FOLD_TICKS`` seconds, fewer than that many thousand
values). Snapshots fold first anyway. The real server runs a similar upkeep task for
its summaries every five seconds.
"""

from __future__ import annotations

import asyncio

from restate_server.metrics.histogram import LogHistogram

FOLD_INTERVAL_S = 1.0
FOLD_AT = 512
FULL_FOLD_TICKS = 10


class HistogramSet:
    __slots__ = ("_histograms", "_timer")

    def __init__(self) -> None:
        self._histograms: list[LogHistogram] = []
        self._timer: asyncio.TimerHandle | None = None

    def new(self) -> LogHistogram:
        histogram = LogHistogram()
        self._histograms.append(histogram)
        return histogram

    def fold(self, at_least: int = 1) -> None:
        """Fold the histograms holding ``at_least`` values."""
        for histogram in self._histograms:
            if len(histogram.values) >= at_least:
                histogram.fold()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Fold on ``loop`` every ``FOLD_INTERVAL_S`` until :meth:`stop`."""
        ticks = 0

        def tick() -> None:
            nonlocal ticks
            ticks += 1
            self.fold(1 if ticks % FULL_FOLD_TICKS == 0 else FOLD_AT)
            self._timer = loop.call_later(FOLD_INTERVAL_S, tick)

        self.stop()
        self._timer = loop.call_later(FOLD_INTERVAL_S, tick)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def new_histogram(histograms: HistogramSet | None) -> LogHistogram:
    """A histogram folded by ``histograms``' upkeep (or only at snapshots without one)."""
    return LogHistogram() if histograms is None else histograms.new()
