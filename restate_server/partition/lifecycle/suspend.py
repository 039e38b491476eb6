"""The SDK suspended: wait for a notification, unless one already raced in."""

from __future__ import annotations

from restate_server.partition.actions import FailAttempt
from restate_server.partition.commands import AttemptSuspended
from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.resume import is_awaited_present
from restate_server.partition.lifecycle.start import apply_pin, start
from restate_server.storage.records import INVOKED, SUSPENDED


def suspend(ctx: ApplyContext, command: AttemptSuspended) -> None:
    status = ctx.get_status(command.invocation_id)
    if status is None or status.status != INVOKED or status.epoch != command.epoch:
        return
    if not (
        command.waiting_completions or command.waiting_signals or command.waiting_named_signals
    ):
        ctx.emit(FailAttempt(command.invocation_id, command.epoch, 571, "empty suspension message"))
        return
    apply_pin(status, command.pin)
    status.waiting_completions = list(command.waiting_completions)
    status.waiting_signals = list(command.waiting_signals)
    status.waiting_named_signals = list(command.waiting_named_signals)
    if is_awaited_present(status):
        # What it waits for arrived while it was suspending: go again at once.
        start(ctx, command.invocation_id, status)
        return
    status.status = SUSPENDED
    ctx.put_status(command.invocation_id, status)
