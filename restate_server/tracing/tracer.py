"""The spans of invocations, as the real server makes them (see ``docs/tracing.md``).

- ``ingress <target>``: when the ingress accepts a call or send; child of the request's
  ``traceparent`` (or a new trace's root); it decides sampling.
- ``invocation-start <target>``: the invocation's own span, with its fixed id (see
  ``span_context``), from its creation to its first run; child of its cause (the ingress
  span or the calling attempt), or a root linked to it (one-way calls).
- ``invocation-attempt <target>``: one per attempt, child of the invocation's span; its
  context is the ``traceparent`` the endpoint receives, and the cause of the calls made
  in it. Events: ``restate.invocation.lifecycle.new_command`` / ``run_ended`` /
  ``suspended``.
- ``invocation-end <target>``: when the invocation completes, child of its span.

``<target>`` is ``Service/handler`` or ``Object/{key}/handler``; every span carries
``rpc.service``, ``rpc.method``, ``restate.invocation.id`` and ``restate.invocation.target``.
All spans are ``INTERNAL`` and come from the instrumentation scope ``services``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceFlags, TraceState
from opentelemetry.util.types import AttributeValue

from restate_server.protocol import messages as pm
from restate_server.protocol.ids import InvocationId
from restate_server.storage.records import Failure, Target, TraceContext
from restate_server.tracing.provider import InvocationIds
from restate_server.tracing.span_context import child_of
from restate_server.tracing.w3c import format_traceparent, parse_traceparent

SCOPE = "services"
NEW_COMMAND = "restate.invocation.lifecycle.new_command"
RUN_ENDED = "restate.invocation.lifecycle.run_ended"
SUSPENDED = "restate.invocation.lifecycle.suspended"
_CALL_TYPES = (pm.CallCommandMessage.TYPE, pm.OneWayCallCommandMessage.TYPE)


def short_target(target: Target) -> str:
    """The target in span names: keys are left out (``Object/{key}/handler``)."""
    if target.key is None:
        return f"{target.service}/{target.handler}"
    return f"{target.service}/{{key}}/{target.handler}"


def _base_attributes(invocation_id: str, target: Target) -> dict[str, AttributeValue]:
    return {
        "rpc.service": target.service,
        "rpc.method": target.handler,
        "restate.invocation.id": invocation_id,
        "restate.invocation.target": target.display(),
    }


def _remote(trace_id: bytes, span_id: bytes, flags: int, trace_state: str) -> trace.SpanContext:
    return trace.SpanContext(
        int.from_bytes(trace_id, "big"),
        int.from_bytes(span_id, "big"),
        is_remote=True,
        trace_flags=TraceFlags(flags),
        trace_state=TraceState.from_header([trace_state]) if trace_state else None,
    )


def _as_parent(span_context: trace.SpanContext) -> Context:
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def _to_record(span_context: trace.SpanContext) -> TraceContext:
    return TraceContext(
        trace_id=span_context.trace_id.to_bytes(16, "big"),
        span_id=span_context.span_id.to_bytes(8, "big"),
        flags=int(span_context.trace_flags),
        trace_state=span_context.trace_state.to_header(),
    )


class AttemptSpan:
    """The span of one attempt; ended exactly once by ``ended``/``failed``/``dropped``."""

    __slots__ = ("_span", "context")

    def __init__(self, span: Span) -> None:
        self._span = span
        # the attempt's own context: the endpoint's traceparent, the cause of its calls
        self.context = _to_record(span.get_span_context())

    def headers(self) -> list[tuple[str, str]]:
        """``traceparent`` and ``tracestate`` (sent even when empty, as the real server)."""
        context = self.context
        traceparent = format_traceparent(context.trace_id, context.span_id, context.flags)
        return [("traceparent", traceparent), ("tracestate", context.trace_state)]

    def cause_of(self, type_id: int) -> TraceContext | None:
        """What a command of this attempt passes on: its context, for calls."""
        return self.context if type_id in _CALL_TYPES else None

    def command(self, type_id: int, message: object) -> None:
        attributes: dict[str, AttributeValue] = {
            "restate.journal.command.type": f"Command/{pm.SHORT_NAMES.get(type_id, type_id)}"
        }
        name = getattr(message, "name", None)
        if name:
            attributes["restate.journal.command.name"] = name
        self._span.add_event(NEW_COMMAND, attributes)

    def run_ended(self, completion_id: int) -> None:
        self._span.add_event(
            RUN_ENDED, {"restate.journal.notification.id": f"CompletionId: {completion_id}"}
        )

    def ended(self, suspended: bool) -> None:
        """The SDK ended (End) or suspended the attempt."""
        if suspended:
            self._span.add_event(SUSPENDED)
        else:
            self._span.set_status(Status(StatusCode.OK))
        self._span.end()

    def failed(self) -> None:
        """The attempt failed; it is retried or the invocation fails or pauses."""
        self._span.set_status(Status(StatusCode.ERROR, "transient failure"))
        self._span.end()

    def dropped(self) -> None:
        """Aborted (the invocation completed or was killed elsewhere, or shutdown)."""
        self._span.end()


class InvocationTracer:
    """Makes the spans; the rest of the server holds one of these, or None when off."""

    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer(SCOPE)
        ids = provider.id_generator
        assert isinstance(ids, InvocationIds)
        self._ids = ids

    # ---- the ingress

    def ingress_span(
        self, invocation_id: InvocationId, target: Target, headers: Mapping[str, str]
    ) -> TraceContext | None:
        """Record the ingress span; the invocation's context (None: not sampled)."""
        incoming = parse_traceparent(headers.get("traceparent"))
        parent = None
        if incoming is not None:
            state = headers.get("tracestate", "")
            parent = _as_parent(_remote(*incoming, trace_state=state))
        span = self._tracer.start_span(
            f"ingress {short_target(target)}",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes=_base_attributes(str(invocation_id), target),
        )
        span.end()
        span_context = span.get_span_context()
        if not span_context.trace_flags.sampled:
            return None
        return child_of(_to_record(span_context), invocation_id.uuid)

    # ---- invocations

    def invocation_started(
        self, invocation_id: str, target: Target, context: TraceContext, created_at_ms: int
    ) -> None:
        """The invocation's span, from its creation to now (its first run)."""
        links: list[Link] = []
        parent = None
        if context.cause_span_id is not None and context.cause_trace_id is None:
            parent = _as_parent(
                _remote(context.trace_id, context.cause_span_id, context.flags, context.trace_state)
            )
        else:
            # a root in its own trace (one-way call): the ids are taken from the context
            self._ids.next_trace_id = int.from_bytes(context.trace_id, "big")
            if context.cause_trace_id is not None and context.cause_span_id is not None:
                cause = _remote(context.cause_trace_id, context.cause_span_id, context.flags, "")
                links.append(Link(cause, {"restate.runtime": True}))
        self._ids.next_span_id = int.from_bytes(context.span_id, "big")
        try:
            span = self._tracer.start_span(
                f"invocation-start {short_target(target)}",
                context=parent,
                kind=SpanKind.INTERNAL,
                attributes=_base_attributes(invocation_id, target),
                links=links,
                start_time=created_at_ms * 1_000_000,
            )
        finally:
            self._ids.next_span_id = self._ids.next_trace_id = None
        span.end()

    def invocation_ended(
        self, invocation_id: str, target: Target, context: TraceContext, failure: Failure | None
    ) -> None:
        attributes = _base_attributes(invocation_id, target)
        if failure is None:
            attributes["restate.invocation.result"] = "success"
            status = Status(StatusCode.OK)
        else:
            attributes["restate.invocation.result"] = "failure"
            attributes["error.message"] = failure.message
            attributes["restate.invocation.error.code"] = str(failure.code)
            status = Status(StatusCode.ERROR, failure.message)
        span = self._tracer.start_span(
            f"invocation-end {short_target(target)}",
            context=self._parent(context),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        )
        span.set_status(status)
        span.end()

    def attempt_span(
        self,
        invocation_id: str,
        target: Target,
        context: TraceContext,
        deployment_id: str,
        deployment_address: str,
        protocol_version: int,
    ) -> AttemptSpan:
        attributes = _base_attributes(invocation_id, target)
        attributes["rpc.system"] = "restate"
        attributes["restate.deployment.id"] = deployment_id
        attributes["restate.deployment.address"] = deployment_address
        attributes["restate.deployment.service_protocol_version"] = protocol_version
        span = self._tracer.start_span(
            f"invocation-attempt {short_target(target)}",
            context=self._parent(context),
            kind=SpanKind.INTERNAL,
            attributes=attributes,
        )
        return AttemptSpan(span)

    @staticmethod
    def _parent(context: TraceContext) -> Context:
        """The invocation's span as the parent of its attempt and end spans."""
        return _as_parent(
            _remote(context.trace_id, context.span_id, context.flags, context.trace_state)
        )

    # ---- lifecycle

    def shutdown(self, timeout_s: float = 3.0) -> None:
        """Export what is buffered and stop the exporter, waiting ``timeout_s`` at most
        (an unreachable collector would hold the exporter in its retries for longer)."""
        stopping = threading.Thread(
            target=self._provider.shutdown, name="tracing-shutdown", daemon=True
        )
        stopping.start()
        stopping.join(timeout_s)
