"""GetLazyStateCommand: journal it and answer at once with the stored value (or void)."""

from __future__ import annotations

from restate_server.partition import journal_messages
from restate_server.partition.commands import JournalCommand
from restate_server.partition.context import ApplyContext
from restate_server.partition.entries.preconditions import can_read_state, partition_key_of, reject
from restate_server.protocol import messages as pm
from restate_server.storage import keys
from restate_server.storage.records import InvocationStatus


def apply(ctx: ApplyContext, status: InvocationStatus, command: JournalCommand) -> None:
    if not can_read_state(status):
        reject(ctx, command.invocation_id, status, "State access is not allowed in a service")
        return
    target = status.target
    assert target.key is not None
    message = command.message
    ctx.append_entry(command.invocation_id, status, command.type_id, command.body)
    value = ctx.txn.get(
        keys.state_entry(
            partition_key_of(command.invocation_id), target.service, target.key, message.key
        )
    )
    completion_id = message.result_completion_id
    type_id, body = journal_messages.notification(
        pm.GetLazyStateCompletionNotificationMessage,
        completion_id=completion_id,
        void=value is None,
        value=value,
    )
    ctx.append_notification(
        command.invocation_id, status, type_id, body, completion_id=completion_id
    )
