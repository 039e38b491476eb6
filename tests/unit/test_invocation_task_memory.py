"""A finished invocation task is freed by reference counting, not left in a reference
cycle for the garbage collector (whose passes stalled the loop for up to 80 ms when
every greet left its task, attempt, stream and futures in one)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from restate_server.invoker import invocation_task
from restate_server.invoker.attempt import ENDED
from tests.support.collector import collector_off
from tests.unit.test_invoker_drain import FakeStream, _action, _invoker


class FakeAttempt:
    """Holds its task, as the real attempt does, and ends at once."""

    def __init__(self, task: Any, retry_count: int) -> None:
        self.task = task
        self.stream = FakeStream()
        self.sdk_server = None

    async def run(self) -> str:
        return ENDED


@pytest.fixture
def no_collector() -> Iterator[None]:
    with collector_off():
        yield


async def test_a_finished_task_and_its_attempt_are_freed_at_once(
    monkeypatch: pytest.MonkeyPatch, no_collector: None
) -> None:
    monkeypatch.setattr(invocation_task, "Attempt", FakeAttempt)
    invoker = _invoker()
    invoker.perform(_action(1))
    (task,) = invoker.tasks.values()
    runner = task._runner
    assert runner is not None
    await runner
    assert invoker.tasks == {}
    attempt = weakref.ref(task.attempt) if task.attempt is not None else None
    finished = weakref.ref(task)
    del task, runner
    await asyncio.sleep(0)
    assert finished() is None, "the task was kept alive by a reference cycle"
    assert attempt is None or attempt() is None
