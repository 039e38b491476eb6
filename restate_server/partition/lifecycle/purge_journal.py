"""PurgeJournal: drop a completed invocation's journal; its status and output stay."""

from __future__ import annotations

from restate_server.partition.actions import CommandReply
from restate_server.partition.commands import PurgeJournal
from restate_server.partition.context import ApplyContext
from restate_server.storage.records import COMPLETED


def purge_journal(ctx: ApplyContext, command: PurgeJournal) -> None:
    invocation_id = command.invocation_id
    status = ctx.get_status(invocation_id)
    if status is None:
        result = "not_found"
    elif status.status != COMPLETED:
        result = "not_completed"
    else:
        ctx.delete_journal(invocation_id, status.journal_length)
        # a length of 0 says there is nothing left to read or to clean up later
        status.journal_length = 0
        status.journal_expires_at = None
        ctx.put_status(invocation_id, status)
        result = "done"
    if command.request_id is not None:
        ctx.emit(CommandReply(command.request_id, result))
