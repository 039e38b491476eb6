"""ClearStateCommand: remove one state key of the object/workflow instance."""

from __future__ import annotations

from restate_server.partition.commands import JournalCommand
from restate_server.partition.context import ApplyContext
from restate_server.partition.entries.preconditions import can_write_state, partition_key_of, reject
from restate_server.storage import keys
from restate_server.storage.records import InvocationStatus


def apply(ctx: ApplyContext, status: InvocationStatus, command: JournalCommand) -> None:
    if not can_write_state(status):
        reject(ctx, command.invocation_id, status, "ClearState is not allowed in this handler")
        return
    target = status.target
    assert target.key is not None
    ctx.append_entry(command.invocation_id, status, command.type_id, command.body)
    ctx.txn.delete(
        keys.state_entry(
            partition_key_of(command.invocation_id), target.service, target.key, command.message.key
        )
    )
