"""An awakeable completed from outside an invocation (the ingress resolve/reject API)."""

from __future__ import annotations

from restate_server.partition import journal_messages
from restate_server.partition.actions import CommandReply
from restate_server.partition.commands import AppendNotification, ResolveAwakeable
from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.notify import append_notification
from restate_server.protocol import messages as pm


def resolve_awakeable(ctx: ApplyContext, command: ResolveAwakeable) -> None:
    if command.failure is not None:
        type_id, body = journal_messages.notification(
            pm.SignalNotificationMessage, signal_id=command.signal_id, failure=command.failure
        )
    else:
        type_id, body = journal_messages.notification(
            pm.SignalNotificationMessage, signal_id=command.signal_id, value=command.value or b""
        )
    status = ctx.get_status(command.invocation_id)
    if status is None or command.signal_id not in status.signal_ids:
        append_notification(
            ctx,
            AppendNotification(command.invocation_id, type_id, body, signal_id=command.signal_id),
        )
    # Completing an awakeable twice, or one of a finished invocation, is not an error.
    if command.request_id is not None:
        ctx.emit(CommandReply(command.request_id, "accepted"))
