"""A new invocation arrives: deduplicate, schedule, queue behind its key, or start."""

from __future__ import annotations

import hashlib

from restate_server.partition import journal_messages
from restate_server.partition.actions import IngressSendAck, RegisterTimer
from restate_server.partition.commands import InvocationRequest
from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.attach import answer_existing
from restate_server.partition.lifecycle.key_lock import KeyLock, lock_key, read_lock, write_lock
from restate_server.partition.lifecycle.start import start
from restate_server.storage import keys
from restate_server.storage.records import (
    INBOXED,
    SCHEDULED,
    InvocationStatus,
    JournalEntry,
    ScheduledInvokeTimer,
    encode,
)


def invoke(ctx: ApplyContext, request: InvocationRequest) -> None:
    invocation_id = request.invocation_id
    existing = None if request.fresh else ctx.get_status(invocation_id)
    if existing is not None:
        # Same id again: an idempotent repeat or a second workflow run.
        answer_existing(ctx, invocation_id, existing, request)
        return

    status = InvocationStatus(
        status=SCHEDULED,
        target=request.target,
        created_at=ctx.now,
        modified_at=ctx.now,
        random_seed=_seed_of(invocation_id),
        idempotency_key=request.idempotency_key,
        invoked_by=request.invoked_by,
        invoked_by_id=request.invoked_by_id,
        invoked_by_target=request.invoked_by_target,
        completion_retention_ms=request.completion_retention_ms,
        journal_retention_ms=request.journal_retention_ms,
    )
    if request.trace_context is not None:
        status.trace_context = request.trace_context
    if request.sink is not None:
        status.sinks.append(request.sink)
    type_id, body = journal_messages.input_entry(request.argument, request.headers)
    ctx.append_entry(invocation_id, status, type_id, body)
    journal = [JournalEntry(type_id, body, ctx.now)]

    if request.send_ack_request_id is not None:
        ctx.emit(
            IngressSendAck(
                request.send_ack_request_id,
                invocation_id,
                previously_accepted=False,
                execution_time=request.execution_time,
            )
        )

    if request.execution_time is not None and request.execution_time > ctx.now:
        status.execution_time = request.execution_time
        status.scheduled_at = ctx.now
        timer = ScheduledInvokeTimer(invocation_id)
        timer_key = keys.timer(ctx.partition_id, request.execution_time, ctx.next_sequence("timer"))
        ctx.txn.put(timer_key, encode(timer))
        ctx.emit(RegisterTimer(timer_key, request.execution_time, timer))
        ctx.put_status(invocation_id, status)
        return

    admit(ctx, invocation_id, status, journal)


def admit(
    ctx: ApplyContext,
    invocation_id: bytes,
    status: InvocationStatus,
    journal: list[JournalEntry] | None = None,
) -> None:
    """Start the invocation, or queue it behind the invocation holding its key."""
    target = status.target
    if target.needs_lock and target.key is not None:
        key = lock_key(invocation_id, target)
        lock = read_lock(ctx, key)
        if lock is not None:
            pk = int.from_bytes(invocation_id[:8], "big")
            sequence = ctx.next_sequence("inbox")
            ctx.txn.put(keys.inbox_entry(pk, target.service, target.key, sequence), invocation_id)
            write_lock(ctx, key, lock._replace(queued=lock.queued + 1))
            status.status = INBOXED
            status.inboxed_at = ctx.now
            status.inbox_sequence = sequence
            ctx.put_status(invocation_id, status)
            return
        write_lock(ctx, key, KeyLock(invocation_id, 0))
    start(ctx, invocation_id, status, journal)


def _seed_of(invocation_id: bytes) -> int:
    """A stable per-invocation seed for the SDK's deterministic random (StartMessage field 9)."""
    return int.from_bytes(hashlib.blake2b(invocation_id, digest_size=8).digest(), "big")
