"""Completing an invocation: answer everyone waiting, free its key, keep what is retained."""

from __future__ import annotations

from restate_server.partition.actions import InvocationSpanEnd
from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.key_lock import KeyLock, lock_key, read_lock, write_lock
from restate_server.partition.lifecycle.patch_state import replace_state
from restate_server.partition.lifecycle.reply import reply_to_sink
from restate_server.partition.lifecycle.start import start
from restate_server.storage import keys
from restate_server.storage.records import (
    COMPLETED,
    IngressSink,
    InvocationStatus,
    JournalEntry,
    Outcome,
    decode_journal_entry,
    decode_queued_mutation,
    is_queued_invocation,
)


def complete(
    ctx: ApplyContext, invocation_id: bytes, status: InvocationStatus, outcome: Outcome
) -> None:
    status.status = COMPLETED
    status.completed_at = ctx.now
    status.output = outcome
    status.waiting_completions = []
    status.waiting_signals = []
    status.waiting_named_signals = []
    sinks, status.sinks = status.sinks, []

    retention = max(status.completion_retention_ms, status.journal_retention_ms)
    if retention > 0:
        status.expires_at = ctx.now + (status.completion_retention_ms or retention)
        status.journal_expires_at = ctx.now + status.journal_retention_ms
        if status.journal_retention_ms == 0:
            ctx.delete_journal(invocation_id, status.journal_length)
        ctx.put_status(invocation_id, status)
    else:
        ctx.delete_journal(invocation_id, status.journal_length)
        ctx.delete_status(invocation_id)

    for sink in sinks:
        # Attach requests see the retention expiry; the original caller does not.
        expires = status.expires_at if isinstance(sink, IngressSink) and sink.attach else None
        reply_to_sink(ctx, invocation_id, sink, outcome, expires, status)
    if status.trace_context is not None:
        ctx.emit(
            InvocationSpanEnd(invocation_id, status.target, status.trace_context, outcome.failure)
        )
    release_key(ctx, invocation_id, status)


def release_key(ctx: ApplyContext, invocation_id: bytes, status: InvocationStatus) -> None:
    """Hand the key's lock to the next queued invocation, or free it."""
    target = status.target
    if not target.needs_lock or target.key is None:
        return
    key = lock_key(invocation_id, target)
    lock = read_lock(ctx, key)
    if lock is None or lock.holder != invocation_id:
        return
    if lock.queued > 0:
        pk = int.from_bytes(invocation_id[:8], "big")
        inbox_end = keys.prefix_end(keys.inbox_prefix(pk, target.service, target.key))
        start_key = keys.inbox_entry(pk, target.service, target.key, lock.head + 1)
        remaining = lock.queued
        while (first := ctx.txn.first_in_range(start_key, inbox_end)) is not None:
            inbox_key, next_id = first
            ctx.txn.delete(inbox_key)
            remaining -= 1
            head = keys.decode_u64(inbox_key[-8:])
            if not is_queued_invocation(next_id):
                # a state mutation queued behind the holder: it runs now, in line
                mutation = decode_queued_mutation(next_id)
                replace_state(ctx, pk, target.service, target.key, mutation.version, mutation.state)
                continue
            next_status = ctx.get_status(next_id)
            if next_status is None or next_status.status == COMPLETED:
                continue  # defensive: cancel/kill take invocations out of the inbox
            write_lock(ctx, key, KeyLock(next_id, max(0, remaining), head))
            next_status.inbox_sequence = None
            start(ctx, next_id, next_status, _input_only(ctx, next_id, next_status))
            return
    ctx.txn.delete(key)


def _input_only(
    ctx: ApplyContext, invocation_id: bytes, status: InvocationStatus
) -> list[JournalEntry] | None:
    """A queued invocation's journal is its Input entry: hand it to the invoker."""
    if status.journal_length != 1:
        return None
    raw = ctx.txn.get(keys.journal_entry(invocation_id, 0))
    return None if raw is None else [decode_journal_entry(raw)]
