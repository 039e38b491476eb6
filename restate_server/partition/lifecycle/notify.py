"""A notification for a live invocation (a callee's result, a signal, an awakeable)."""

from __future__ import annotations

from restate_server.partition.commands import AppendNotification
from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.resume import resume_if_awaited
from restate_server.storage.records import INVOKED, PAUSED, SUSPENDED

# Signals only reach invocations that have started and not finished; results of
# calls also reach invocations that are between attempts.
_SIGNAL_TARGETS = frozenset({INVOKED, SUSPENDED, PAUSED})


def append_notification(ctx: ApplyContext, command: AppendNotification) -> None:
    status = ctx.get_status(command.invocation_id)
    if status is None or status.status not in _SIGNAL_TARGETS:
        return
    if command.completion_id is not None and command.completion_id in status.completion_ids:
        return  # completions are delivered once
    ctx.append_notification(
        command.invocation_id,
        status,
        command.type_id,
        command.body,
        completion_id=command.completion_id,
        signal_id=command.signal_id,
        signal_name=command.signal_name,
    )
    resume_if_awaited(ctx, command.invocation_id, status)
    ctx.put_status(command.invocation_id, status)
