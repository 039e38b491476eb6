"""An invocation's span context, derived from its cause and its id (no OpenTelemetry here).

As in the real server (``ServiceInvocationSpanContext::start``): the span id is the last
8 bytes of the invocation's uuid. A *parent* cause (the ingress span, the attempt that
made a call) puts the invocation in the cause's trace, with its flags and trace state; a
*linked* cause (the attempt that sent a one-way call) starts a new trace whose id is the
invocation's uuid, linked to the cause. Unsampled causes give no context at all: nothing
is stored and nothing is traced. Pure, so the partition state machine may use it.
"""

from __future__ import annotations

from restate_server.storage.records import TraceContext
from restate_server.tracing.w3c import SAMPLED


def invocation_span_id(invocation_uuid: bytes) -> bytes:
    return invocation_uuid[8:16]


def child_of(cause: TraceContext, invocation_uuid: bytes) -> TraceContext | None:
    """The context of an invocation whose span is a child of ``cause``."""
    if not cause.flags & SAMPLED:
        return None
    return TraceContext(
        trace_id=cause.trace_id,
        span_id=invocation_span_id(invocation_uuid),
        flags=cause.flags,
        trace_state=cause.trace_state,
        cause_span_id=cause.span_id,
    )


def linked_to(cause: TraceContext, invocation_uuid: bytes) -> TraceContext | None:
    """The context of an invocation that starts its own trace, linked to ``cause``."""
    if not cause.flags & SAMPLED:
        return None
    return TraceContext(
        trace_id=bytes(invocation_uuid[:16]),
        span_id=invocation_span_id(invocation_uuid),
        flags=cause.flags,
        cause_span_id=cause.span_id,
        cause_trace_id=cause.trace_id,
    )


def for_callee(cause: TraceContext, invocation_uuid: bytes, one_way: bool) -> TraceContext | None:
    """A call is a child of the calling attempt's span; a one-way call is linked to it."""
    return linked_to(cause, invocation_uuid) if one_way else child_of(cause, invocation_uuid)
