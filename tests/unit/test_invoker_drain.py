"""Shutdown drain of the invoker, without sockets: streaming attempts are asked to
suspend, everything else stops at once, and nothing new starts."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from restate_server.invoker.attempt import Attempt
from restate_server.invoker.invocation_task import InvocationTask
from restate_server.invoker.invoker import Invoker
from restate_server.invoker.retry import RetryPolicy
from restate_server.invoker.transport import Transport
from restate_server.partition.actions import InvokeAttempt
from restate_server.storage.records import Target

TARGET = Target("Greeter", "greet", None, "service", None)


class FakeStream:
    def __init__(self) -> None:
        self.ended = False
        self.was_reset = False

    def end(self) -> None:
        self.ended = True

    def reset(self) -> None:
        self.was_reset = True


def _invoker() -> Invoker:
    processor = SimpleNamespace(partition_id=0, submit=lambda *a, **k: None)
    return Invoker(
        store=None,  # type: ignore[arg-type]
        registry=None,
        transport=Transport(),
        processor_for=lambda _id: processor,  # type: ignore[arg-type,return-value]
        default_retry_policy=RetryPolicy(),
        durable_read=lambda fn: asyncio.sleep(0, fn()),  # type: ignore[arg-type,return-value]
    )


def _action(n: int) -> InvokeAttempt:
    return InvokeAttempt(n.to_bytes(2, "big") + bytes(22), 1, TARGET, 0, None, None)


def _task(invoker: Invoker, n: int, run: Any) -> InvocationTask:
    """A task whose runner is ``run(task)`` instead of real attempts."""
    task = InvocationTask(invoker, _action(n), invoker.processor_for(b""))
    invoker.tasks[task.invocation_id] = task

    async def runner() -> None:
        try:
            await run(task)
        finally:
            invoker.task_finished(task)

    task._runner = asyncio.get_running_loop().create_task(runner())
    return task


def _streaming_attempt(task: InvocationTask) -> tuple[Attempt, FakeStream]:
    attempt = Attempt(task, 0)
    stream = FakeStream()
    attempt.stream = stream  # type: ignore[assignment]
    attempt.request_open = True
    task.attempt = attempt
    return attempt, stream


async def test_a_streaming_attempt_is_asked_to_suspend_and_finishes() -> None:
    invoker = _invoker()
    suspended = asyncio.Event()

    async def run(task: InvocationTask) -> None:
        await suspended.wait()  # the SDK answers the closed request with a Suspension

    task = _task(invoker, 1, run)
    attempt, stream = _streaming_attempt(task)
    drain = asyncio.ensure_future(invoker.drain(5.0))
    await asyncio.sleep(0)
    assert stream.ended and not attempt.request_open and not stream.was_reset
    suspended.set()
    assert await drain == 0
    assert invoker.tasks == {}


async def test_attempts_not_streaming_yet_and_retry_waits_are_aborted() -> None:
    invoker = _invoker()

    async def forever(task: InvocationTask) -> None:
        await asyncio.sleep(3600)

    waiting_to_retry = _task(invoker, 1, forever)  # no attempt object yet
    connecting = _task(invoker, 2, forever)
    connecting.attempt = Attempt(connecting, 0)  # stream not open yet
    assert await invoker.drain(5.0) == 0
    assert waiting_to_retry._runner is not None and waiting_to_retry._runner.cancelled()
    assert connecting._runner is not None and connecting._runner.cancelled()


async def test_the_deadline_leaves_what_still_runs_to_close() -> None:
    invoker = _invoker()

    async def stuck(task: InvocationTask) -> None:
        await asyncio.sleep(3600)  # e.g. a ctx.run that does not return

    task = _task(invoker, 1, stuck)
    _streaming_attempt(task)
    assert await invoker.drain(0.05) == 1
    await invoker.close()
    await asyncio.sleep(0)
    assert task._runner is not None and task._runner.cancelled()


async def test_nothing_new_starts_while_draining() -> None:
    invoker = _invoker()
    await invoker.drain(0.0)
    invoker.perform(_action(7))
    assert invoker.tasks == {}
