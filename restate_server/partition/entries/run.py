"""RunCommand and the SDK's proposal of its result.

The Run command is only journaled; the result arrives as ProposeRunCompletion,
which the runtime turns into a RunCompletion notification and echoes back (or,
in V7 when asked, acknowledges).
"""

from __future__ import annotations

from restate_server.partition import journal_messages
from restate_server.partition.commands import JournalCommand, ProposeRunCompletion
from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.start import apply_pin
from restate_server.protocol import messages as pm
from restate_server.storage.records import INVOKED, InvocationStatus


def apply(ctx: ApplyContext, status: InvocationStatus, command: JournalCommand) -> None:
    ctx.append_entry(command.invocation_id, status, command.type_id, command.body)


def propose_completion(ctx: ApplyContext, command: ProposeRunCompletion) -> None:
    status = ctx.get_status(command.invocation_id)
    if status is None or status.status != INVOKED or status.epoch != command.epoch:
        return
    apply_pin(status, command.pin)
    if command.completion_id in status.completion_ids:
        return  # a duplicate proposal (replayed attempt); the first one stands
    if command.failure is not None:
        type_id, body = journal_messages.notification(
            pm.RunCompletionNotificationMessage,
            completion_id=command.completion_id,
            failure=command.failure,
        )
    else:
        type_id, body = journal_messages.notification(
            pm.RunCompletionNotificationMessage,
            completion_id=command.completion_id,
            value=command.value or b"",
        )
    ctx.append_notification(
        command.invocation_id,
        status,
        type_id,
        body,
        completion_id=command.completion_id,
        ack_completion_id=command.completion_id if command.requested_ack else None,
    )
    ctx.put_status(command.invocation_id, status)
