"""Delivering an invocation's outcome to whoever waits for it."""

from __future__ import annotations

from restate_server.partition.actions import IngressReply
from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.caller import complete_caller
from restate_server.storage.records import CallerSink, IngressSink, InvocationStatus, Outcome, Sink


def reply_to_sink(
    ctx: ApplyContext,
    invocation_id: bytes,
    sink: Sink,
    outcome: Outcome,
    expires_at: int | None,
    status: InvocationStatus | None = None,
) -> None:
    """``expires_at`` is set for answers that come from a retained result."""
    if isinstance(sink, IngressSink):
        target = status.target if status is not None and sink.attach else None
        ctx.emit(IngressReply(sink.request_id, invocation_id, outcome, expires_at, target=target))
    elif isinstance(sink, CallerSink):
        complete_caller(ctx, sink, outcome)
