"""Cancel: deliver the cancel signal so the SDK can run compensations.

An invocation that has not started yet (inboxed or scheduled) ends at once.
"""

from __future__ import annotations

from restate_server.partition import journal_messages
from restate_server.partition.actions import CommandReply
from restate_server.partition.commands import AppendNotification, CancelInvocation
from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.complete import complete
from restate_server.partition.lifecycle.inbox import remove_from_inbox
from restate_server.partition.lifecycle.notify import append_notification
from restate_server.partition.lifecycle.start import start
from restate_server.protocol import messages as pm
from restate_server.storage.records import (
    COMPLETED,
    INBOXED,
    PAUSED,
    SCHEDULED,
    Failure,
    Outcome,
)

CANCEL_SIGNAL = 1
CANCELED = Outcome(failure=Failure(409, "canceled"))


def cancel(ctx: ApplyContext, command: CancelInvocation) -> None:
    invocation_id = command.invocation_id
    status = ctx.get_status(invocation_id)
    result = "accepted"
    if status is None:
        result = "not_found"
    elif status.status == COMPLETED:
        result = "already_completed"
    elif status.status in (INBOXED, SCHEDULED):
        if status.status == INBOXED:
            remove_from_inbox(ctx, invocation_id, status)
        complete(ctx, invocation_id, status, CANCELED)
    elif CANCEL_SIGNAL not in status.signal_ids:
        type_id, body = journal_messages.notification(
            pm.SignalNotificationMessage, signal_id=CANCEL_SIGNAL, void=True
        )
        append_notification(
            ctx, AppendNotification(invocation_id, type_id, body, signal_id=CANCEL_SIGNAL)
        )
        status = ctx.get_status(invocation_id)
        if status is not None and status.status == PAUSED:
            start(ctx, invocation_id, status)  # it must run to see the signal
    if command.request_id is not None:
        ctx.emit(CommandReply(command.request_id, result))
