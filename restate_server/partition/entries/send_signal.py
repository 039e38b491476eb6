"""SendSignalCommand: a signal for another invocation (index 1 is cancellation)."""

from __future__ import annotations

from restate_server.partition import journal_messages
from restate_server.partition.commands import AppendNotification, CancelInvocation, JournalCommand
from restate_server.partition.context import ApplyContext
from restate_server.partition.entries.preconditions import reject
from restate_server.partition.journal_messages import failure_from_pm
from restate_server.protocol import messages as pm
from restate_server.protocol.ids import InvocationId
from restate_server.storage.records import InvocationStatus


def apply(ctx: ApplyContext, status: InvocationStatus, command: JournalCommand) -> None:
    message = command.message
    try:
        target = InvocationId.from_str(message.target_invocation_id).to_bytes()
    except ValueError as exc:
        reject(ctx, command.invocation_id, status, f"invalid target invocation id: {exc}")
        return
    ctx.append_entry(command.invocation_id, status, command.type_id, command.body)
    if message.idx == 1 and message.name is None:
        ctx.deliver_to_invocation(target, CancelInvocation(target))
        return
    signal_id = message.idx if message.name is None else None
    type_id, body = journal_messages.notification(
        pm.SignalNotificationMessage,
        signal_id=signal_id,
        signal_name=message.name,
        void=message.void,
        value=message.value,
        failure=failure_from_pm(message.failure),
    )
    ctx.deliver_to_invocation(
        target,
        AppendNotification(target, type_id, body, signal_id=signal_id, signal_name=message.name),
    )
