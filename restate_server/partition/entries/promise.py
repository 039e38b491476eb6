"""Workflow promises: GetPromise, PeekPromise, CompletePromise.

Promises belong to a workflow instance (service + key). The run handler and
the shared handlers of one key live in the same partition, so every promise
operation is local.
"""

from __future__ import annotations

from restate_server.partition import journal_messages
from restate_server.partition.commands import AppendNotification, JournalCommand
from restate_server.partition.context import ApplyContext
from restate_server.partition.entries.preconditions import is_workflow, partition_key_of, reject
from restate_server.partition.journal_messages import failure_from_pm
from restate_server.protocol import messages as pm
from restate_server.storage import keys
from restate_server.storage.records import (
    Failure,
    InvocationStatus,
    Outcome,
    PromiseRecord,
    decode_promise,
    encode,
)

ALREADY_COMPLETED = Failure(409, "promise was already completed")


def _promise_key(invocation_id: bytes, status: InvocationStatus, name: str) -> bytes:
    target = status.target
    assert target.key is not None
    return keys.promise(partition_key_of(invocation_id), target.service, target.key, name)


def _load(ctx: ApplyContext, key: bytes) -> PromiseRecord:
    raw = ctx.txn.get(key)
    return PromiseRecord() if raw is None else decode_promise(raw)


def _check(ctx: ApplyContext, status: InvocationStatus, command: JournalCommand) -> bool:
    if not is_workflow(status):
        reject(ctx, command.invocation_id, status, "promises are only available in workflows")
        return False
    return True


def get(ctx: ApplyContext, status: InvocationStatus, command: JournalCommand) -> None:
    if not _check(ctx, status, command):
        return
    message = command.message
    ctx.append_entry(command.invocation_id, status, command.type_id, command.body)
    key = _promise_key(command.invocation_id, status, message.key)
    record = _load(ctx, key)
    completion_id = message.result_completion_id
    if record.completed and record.outcome is not None:
        type_id, body = journal_messages.outcome_notification(
            pm.GetPromiseCompletionNotificationMessage, completion_id, record.outcome
        )
        ctx.append_notification(
            command.invocation_id, status, type_id, body, completion_id=completion_id
        )
        return
    record.listeners.append((command.invocation_id, completion_id))
    ctx.txn.put(key, encode(record))


def peek(ctx: ApplyContext, status: InvocationStatus, command: JournalCommand) -> None:
    if not _check(ctx, status, command):
        return
    message = command.message
    ctx.append_entry(command.invocation_id, status, command.type_id, command.body)
    record = _load(ctx, _promise_key(command.invocation_id, status, message.key))
    completion_id = message.result_completion_id
    if record.completed and record.outcome is not None:
        type_id, body = journal_messages.outcome_notification(
            pm.PeekPromiseCompletionNotificationMessage, completion_id, record.outcome
        )
    else:
        type_id, body = journal_messages.notification(
            pm.PeekPromiseCompletionNotificationMessage, completion_id=completion_id, void=True
        )
    ctx.append_notification(
        command.invocation_id, status, type_id, body, completion_id=completion_id
    )


def complete(ctx: ApplyContext, status: InvocationStatus, command: JournalCommand) -> None:
    if not _check(ctx, status, command):
        return
    message = command.message
    ctx.append_entry(command.invocation_id, status, command.type_id, command.body)
    key = _promise_key(command.invocation_id, status, message.key)
    record = _load(ctx, key)
    completion_id = message.result_completion_id
    if record.completed:
        type_id, body = journal_messages.notification(
            pm.CompletePromiseCompletionNotificationMessage,
            completion_id=completion_id,
            failure=ALREADY_COMPLETED,
        )
        ctx.append_notification(
            command.invocation_id, status, type_id, body, completion_id=completion_id
        )
        return
    failure = failure_from_pm(message.completion_failure)
    if failure is not None:
        outcome = Outcome(failure=failure)
    else:
        outcome = Outcome(value=message.completion_value or b"")
    listeners, record.listeners = record.listeners, []
    record.completed = True
    record.outcome = outcome
    ctx.txn.put(key, encode(record))
    type_id, body = journal_messages.notification(
        pm.CompletePromiseCompletionNotificationMessage, completion_id=completion_id, void=True
    )
    ctx.append_notification(
        command.invocation_id, status, type_id, body, completion_id=completion_id
    )
    for listener_id, listener_completion in listeners:
        type_id, body = journal_messages.outcome_notification(
            pm.GetPromiseCompletionNotificationMessage, listener_completion, outcome
        )
        ctx.deliver_to_invocation(
            listener_id,
            AppendNotification(listener_id, type_id, body, completion_id=listener_completion),
        )
