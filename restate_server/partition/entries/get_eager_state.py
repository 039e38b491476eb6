"""GetEagerState / GetEagerStateKeys: the SDK answered from the start message's state map;
the runtime only journals what it read."""

from __future__ import annotations

from restate_server.partition.commands import JournalCommand
from restate_server.partition.context import ApplyContext
from restate_server.partition.entries.preconditions import can_read_state, reject
from restate_server.storage.records import InvocationStatus


def apply(ctx: ApplyContext, status: InvocationStatus, command: JournalCommand) -> None:
    if not can_read_state(status):
        reject(ctx, command.invocation_id, status, "State access is not allowed in a service")
        return
    ctx.append_entry(command.invocation_id, status, command.type_id, command.body)
