"""A durable timer fired: complete a sleep, start a scheduled invocation, or clean up."""

from __future__ import annotations

from restate_server.partition import journal_messages
from restate_server.partition.commands import TimerFired
from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.invoke import admit
from restate_server.partition.lifecycle.resume import resume_if_awaited
from restate_server.protocol import messages as pm
from restate_server.storage.records import (
    COMPLETED,
    SCHEDULED,
    ScheduledInvokeTimer,
    SleepTimer,
)


def timer_fired(ctx: ApplyContext, command: TimerFired) -> None:
    if ctx.txn.get(command.key) is None:
        return  # already fired, or removed together with its invocation
    ctx.txn.delete(command.key)
    timer = command.timer
    if isinstance(timer, SleepTimer):
        _complete_sleep(ctx, timer)
    elif isinstance(timer, ScheduledInvokeTimer):
        status = ctx.get_status(timer.invocation_id)
        if status is not None and status.status == SCHEDULED:
            admit(ctx, timer.invocation_id, status)


def _complete_sleep(ctx: ApplyContext, timer: SleepTimer) -> None:
    status = ctx.get_status(timer.invocation_id)
    if status is None or status.status == COMPLETED:
        return
    if timer.completion_id in status.completion_ids:
        return
    type_id, body = journal_messages.notification(
        pm.SleepCompletionNotificationMessage, completion_id=timer.completion_id, void=True
    )
    ctx.append_notification(
        timer.invocation_id, status, type_id, body, completion_id=timer.completion_id
    )
    resume_if_awaited(ctx, timer.invocation_id, status)
    ctx.put_status(timer.invocation_id, status)
