"""Completing the journal entry of an invocation that called or attached to another."""

from __future__ import annotations

from restate_server.partition import journal_messages
from restate_server.partition.commands import AppendNotification
from restate_server.partition.context import ApplyContext
from restate_server.protocol import messages as pm
from restate_server.storage.records import CallerSink, Outcome

_KINDS: dict[str, type[pm.Message]] = {
    "call": pm.CallCompletionNotificationMessage,
    "attach": pm.AttachInvocationCompletionNotificationMessage,
    "output": pm.GetInvocationOutputCompletionNotificationMessage,
}


def complete_caller(ctx: ApplyContext, sink: CallerSink, outcome: Outcome) -> None:
    notify_caller(ctx, sink.caller_id, sink.completion_id, sink.kind, outcome)


def notify_caller(
    ctx: ApplyContext, caller_id: bytes, completion_id: int, kind: str, outcome: Outcome | None
) -> None:
    """Deliver a completion to ``caller_id``; ``outcome`` None means void (output not ready)."""
    message_type = _KINDS[kind]
    if outcome is None:
        type_id, body = journal_messages.notification(
            message_type, completion_id=completion_id, void=True
        )
    else:
        type_id, body = journal_messages.outcome_notification(message_type, completion_id, outcome)
    ctx.deliver_to_invocation(
        caller_id, AppendNotification(caller_id, type_id, body, completion_id=completion_id)
    )
