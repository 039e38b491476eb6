"""Start (or resume) an invocation: it becomes ``invoked`` and the invoker gets an attempt."""

from __future__ import annotations

from restate_server.partition.actions import InvocationSpanStart, InvokeAttempt
from restate_server.partition.context import ApplyContext
from restate_server.storage.records import INVOKED, InvocationStatus, JournalEntry


def start(
    ctx: ApplyContext,
    invocation_id: bytes,
    status: InvocationStatus,
    journal: list[JournalEntry] | None = None,
) -> None:
    """Mark the invocation running and ask the invoker for an attempt.

    ``journal`` is the complete journal when the caller has it at hand.
    """
    status.status = INVOKED
    status.epoch += 1
    first_run = status.running_at is None
    if first_run:
        status.running_at = ctx.now
    status.waiting_completions = []
    status.waiting_signals = []
    status.waiting_named_signals = []
    ctx.put_status(invocation_id, status)
    attempt = InvokeAttempt(
        invocation_id,
        status.epoch,
        status.target,
        status.random_seed,
        status.deployment_id,
        status.protocol_version,
        journal,
    )
    trace_context = status.trace_context
    if trace_context is not None:
        attempt.trace_context = trace_context
        if first_run:
            ctx.emit(
                InvocationSpanStart(invocation_id, status.target, trace_context, status.created_at)
            )
    ctx.emit(attempt)


def apply_pin(status: InvocationStatus, pin: tuple[str, int] | None) -> None:
    """Pin the deployment and protocol version the first attempt chose (once)."""
    if pin is not None and status.deployment_id is None:
        status.deployment_id, status.protocol_version = pin
