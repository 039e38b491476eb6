"""Purge: forget a completed invocation (status, journal; a workflow's state and promises)."""

from __future__ import annotations

from restate_server.partition.actions import CommandReply
from restate_server.partition.commands import PurgeInvocation
from restate_server.partition.context import ApplyContext
from restate_server.storage import keys
from restate_server.storage.records import COMPLETED


def purge(ctx: ApplyContext, command: PurgeInvocation) -> None:
    invocation_id = command.invocation_id
    status = ctx.get_status(invocation_id)
    result = "done"
    if status is None:
        result = "not_found"
    elif status.status != COMPLETED:
        result = "not_completed"
    elif command.only_if_expired and (status.expires_at or 0) > ctx.now:
        if status.journal_expires_at is not None and status.journal_expires_at <= ctx.now:
            ctx.delete_journal(invocation_id, status.journal_length)
            status.journal_expires_at = None
            status.journal_length = 0
            ctx.put_status(invocation_id, status)
        result = "not_expired"
    else:
        ctx.delete_journal(invocation_id, status.journal_length)
        ctx.delete_status(invocation_id)
        target = status.target
        if target.handler_kind == "workflow" and target.key is not None:
            pk = int.from_bytes(invocation_id[:8], "big")
            ctx.txn.delete_prefix(keys.state_prefix(pk, target.service, target.key))
            ctx.txn.delete_prefix(keys.promise_prefix(pk, target.service, target.key))
    if command.request_id is not None:
        ctx.emit(CommandReply(command.request_id, result))
