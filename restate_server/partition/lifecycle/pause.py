"""Pause and resume, from the admin API.

A paused invocation keeps its journal and runs no attempt until resumed (the
invoker also pauses invocations whose retry policy ran out).
"""

from __future__ import annotations

from restate_server.partition.actions import AbortAttempt, CommandReply
from restate_server.partition.commands import PauseInvocation, ResumeInvocation
from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.start import start
from restate_server.storage.records import COMPLETED, INBOXED, INVOKED, PAUSED, SCHEDULED


def pause(ctx: ApplyContext, command: PauseInvocation) -> None:
    status = ctx.get_status(command.invocation_id)
    if status is None:
        result = "not_found"
    elif status.status == PAUSED:
        result = "done"
    elif status.status != INVOKED:
        result = "not_running"
    else:
        status.status = PAUSED
        status.epoch += 1  # whatever the running attempt still sends is ignored
        ctx.put_status(command.invocation_id, status)
        ctx.emit(AbortAttempt(command.invocation_id))
        result = "accepted"
    if command.request_id is not None:
        ctx.emit(CommandReply(command.request_id, result))


def resume(ctx: ApplyContext, command: ResumeInvocation) -> None:
    status = ctx.get_status(command.invocation_id)
    if status is None:
        result = "not_found"
    elif status.status == COMPLETED:
        result = "completed"
    elif status.status in (INBOXED, SCHEDULED):
        result = "not_started"
    else:
        if status.status == PAUSED:
            start(ctx, command.invocation_id, status)
        result = "done"
    if command.request_id is not None:
        ctx.emit(CommandReply(command.request_id, result))
