"""Refused streams (HTTP/2 REFUSED_STREAM, GOAWAY) are resent at once only a few times in
a row: an endpoint that refuses every stream goes through the normal backoff (issue 12,
finding 8: it used to get three immediate resends before every backoff step)."""

from __future__ import annotations

from typing import Any

import pytest

from restate_server.invoker import invocation_task
from restate_server.invoker.errors import AttemptError
from restate_server.invoker.invocation_task import MAX_IMMEDIATE_RESENDS, InvocationTask
from tests.unit.test_invoker_drain import _action, _invoker


class _RefusedAttempt:
    """Every attempt: the endpoint refuses the stream before anything ran."""

    runs = 0
    refused = True

    def __init__(self, task: Any, retries_since_progress: int) -> None:
        self.journaled_commands = 0
        self.sdk_server = None

    async def run(self) -> str:
        type(self).runs += 1
        raise AttemptError("stream refused", reached_sdk=False, refused=type(self).refused)

    def abort_stream_quietly(self) -> None:
        pass

    async def durable_barrier(self) -> None:
        pass


@pytest.mark.parametrize("refused", [True, False])
async def test_an_endpoint_refusing_every_stream_is_backed_off(
    monkeypatch: pytest.MonkeyPatch, refused: bool
) -> None:
    monkeypatch.setattr(invocation_task, "Attempt", _RefusedAttempt)
    _RefusedAttempt.runs = 0
    _RefusedAttempt.refused = refused
    invoker = _invoker()
    task = InvocationTask(invoker, _action(1), invoker.processor_for(b""))
    backoffs = 0

    async def backoff(failure: AttemptError) -> bool:
        nonlocal backoffs
        backoffs += 1
        return backoffs < 5

    task._backoff = backoff  # type: ignore[method-assign]
    invoker.tasks[task.invocation_id] = task
    await task._run()
    assert backoffs == 5
    immediate = MAX_IMMEDIATE_RESENDS if refused else 0
    assert _RefusedAttempt.runs == immediate + 5
