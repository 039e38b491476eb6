"""In-memory schedule of a partition's durable timers.

The timers themselves live in storage (written by the state machine); this
keeps them in a heap, arms one event-loop timer for the earliest, and hands
due timers back to the partition as ``TimerFired`` commands. After a restart
it is rebuilt from the timers table.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable

from restate_server.storage.records import TimerKind

FireCallback = Callable[[bytes, TimerKind], None]


class TimerService:
    def __init__(self, loop: asyncio.AbstractEventLoop, fire: FireCallback) -> None:
        self._loop = loop
        self._fire = fire
        self._heap: list[tuple[int, bytes, TimerKind]] = []
        self._handle: asyncio.TimerHandle | None = None
        self._armed_for: int | None = None
        self._closed = False

    def __len__(self) -> int:
        return len(self._heap)

    def register(self, key: bytes, due: int, timer: TimerKind) -> None:
        heapq.heappush(self._heap, (due, key, timer))
        if self._armed_for is None or due < self._armed_for:
            self._arm()

    def _arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            self._armed_for = None
        if not self._heap or self._closed:
            return
        due = self._heap[0][0]
        delay = max(0.0, (due - time.time() * 1000) / 1000)
        self._armed_for = due
        self._handle = self._loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._handle = None
        self._armed_for = None
        now = time.time() * 1000
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, key, timer = heapq.heappop(heap)
            self._fire(key, timer)
        self._arm()

    def close(self) -> None:
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
