"""Attempts ran out: pause the invocation (keeping its journal) or fail it for good."""

from __future__ import annotations

from restate_server.partition.actions import AbortAttempt
from restate_server.partition.commands import AttemptFailed, CompleteInvocation
from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.complete import complete
from restate_server.storage.records import COMPLETED, INVOKED, PAUSED, Outcome


def attempts_exhausted(ctx: ApplyContext, command: AttemptFailed) -> None:
    status = ctx.get_status(command.invocation_id)
    if status is None or status.status != INVOKED or status.epoch != command.epoch:
        return
    if command.pause:
        status.status = PAUSED
        ctx.put_status(command.invocation_id, status)
        return
    complete(ctx, command.invocation_id, status, Outcome(failure=command.failure))


def complete_with(ctx: ApplyContext, command: CompleteInvocation) -> None:
    status = ctx.get_status(command.invocation_id)
    if status is None or status.status == COMPLETED:
        return
    ctx.emit(AbortAttempt(command.invocation_id))
    complete(ctx, command.invocation_id, status, command.outcome)
