"""Kill: stop at once, fail with 409 "killed", and kill the calls it is waiting for."""

from __future__ import annotations

from restate_server.partition.actions import AbortAttempt, CommandReply
from restate_server.partition.commands import KillInvocation
from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.complete import complete
from restate_server.partition.lifecycle.inbox import remove_from_inbox
from restate_server.protocol import messages as pm
from restate_server.protocol.ids import InvocationId
from restate_server.storage import keys
from restate_server.storage.records import (
    COMPLETED,
    INBOXED,
    Failure,
    InvocationStatus,
    Outcome,
    decode_journal_entry,
)

KILLED = Outcome(failure=Failure(409, "killed"))


def kill(ctx: ApplyContext, command: KillInvocation) -> None:
    invocation_id = command.invocation_id
    status = ctx.get_status(invocation_id)
    result = "done"
    if status is None:
        result = "not_found"
    elif status.status == COMPLETED:
        result = "already_completed"
    else:
        for child in _pending_children(ctx, invocation_id, status):
            ctx.deliver_to_invocation(child, KillInvocation(child))
        if status.status == INBOXED:
            remove_from_inbox(ctx, invocation_id, status)
        ctx.emit(AbortAttempt(invocation_id))
        complete(ctx, invocation_id, status, KILLED)
    if command.request_id is not None:
        ctx.emit(CommandReply(command.request_id, result))


def _pending_children(
    ctx: ApplyContext, invocation_id: bytes, status: InvocationStatus
) -> list[bytes]:
    """Callees of Call commands whose result has not arrived."""
    waiting: dict[int, int] = {}  # invocation-id notification idx -> result completion id
    callee_by_idx: dict[int, bytes] = {}
    done = set(status.completion_ids)
    for _, raw in ctx.txn.scan_prefix(keys.journal_prefix(invocation_id)):
        entry = decode_journal_entry(raw)
        if entry.type_id == pm.CallCommandMessage.TYPE:
            call = pm.decode_message(entry.type_id, entry.body)
            waiting[call.invocation_id_notification_idx] = call.result_completion_id
        elif entry.type_id == pm.CallInvocationIdCompletionNotificationMessage.TYPE:
            note = pm.decode_message(entry.type_id, entry.body)
            if note.completion_id is not None and note.invocation_id:
                callee_by_idx[note.completion_id] = InvocationId.from_str(
                    note.invocation_id
                ).to_bytes()
    return [
        callee_by_idx[idx]
        for idx, result_id in waiting.items()
        if result_id not in done and idx in callee_by_idx
    ]
