"""CompleteAwakeableCommand: resolve or reject another invocation's awakeable."""

from __future__ import annotations

from restate_server.partition import journal_messages
from restate_server.partition.commands import AppendNotification, JournalCommand
from restate_server.partition.context import ApplyContext
from restate_server.partition.entries.preconditions import reject
from restate_server.partition.journal_messages import failure_from_pm
from restate_server.protocol import messages as pm
from restate_server.protocol.ids import parse_awakeable_id
from restate_server.storage.records import InvocationStatus


def apply(ctx: ApplyContext, status: InvocationStatus, command: JournalCommand) -> None:
    message = command.message
    try:
        target, _kind, signal_id = parse_awakeable_id(message.awakeable_id)
    except ValueError as exc:
        reject(ctx, command.invocation_id, status, f"invalid awakeable id: {exc}")
        return
    ctx.append_entry(command.invocation_id, status, command.type_id, command.body)
    failure = failure_from_pm(message.failure)
    if failure is not None:
        type_id, body = journal_messages.notification(
            pm.SignalNotificationMessage, signal_id=signal_id, failure=failure
        )
    else:
        type_id, body = journal_messages.notification(
            pm.SignalNotificationMessage, signal_id=signal_id, value=message.value or b""
        )
    raw_target = target.to_bytes()
    ctx.deliver_to_invocation(
        raw_target, AppendNotification(raw_target, type_id, body, signal_id=signal_id)
    )
