"""Completing the journal entry of an invocation that called or attached to another."""

from __future__ import annotations

from restate_server.partition import journal_messages
from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.resume import resume_if_awaited
from restate_server.protocol import messages as pm
from restate_server.storage.records import COMPLETED, CallerSink, Outcome


def complete_caller(ctx: ApplyContext, sink: CallerSink, outcome: Outcome) -> None:
    caller = ctx.get_status(sink.caller_id)
    if caller is None or caller.status == COMPLETED:
        return
    message_type: type[pm.Message] = (
        pm.CallCompletionNotificationMessage
        if sink.kind == "call"
        else pm.AttachInvocationCompletionNotificationMessage
    )
    type_id, body = journal_messages.outcome_notification(message_type, sink.completion_id, outcome)
    ctx.append_notification(
        sink.caller_id, caller, type_id, body, completion_id=sink.completion_id
    )
    resume_if_awaited(ctx, sink.caller_id, caller)
    ctx.put_status(sink.caller_id, caller)
