"""The spans InvocationTracer makes (names, ids, parents, attributes), recorded in memory.

No sockets: the tracer's provider gets an in-memory exporter instead of OTLP.
"""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from restate_server.protocol import messages as pm
from restate_server.protocol.ids import InvocationId
from restate_server.storage.records import Failure, Target, TraceContext
from restate_server.tracing.provider import InvocationIds, create_resource
from restate_server.tracing.span_context import for_callee
from restate_server.tracing.tracer import InvocationTracer, short_target
from restate_server.tracing.w3c import parse_traceparent

INCOMING = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACE = int("0af7651916cd43dd8448eb211c80319c", 16)
GREETER = Target("Greeter", "greet", None, "service", None)
COUNTER = Target("Counter", "add", "c1", "virtual_object", "exclusive")
INVOCATION = InvocationId(42, bytes.fromhex("61cc1c1b8f689155f921116acedad621"))


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter) -> InvocationTracer:
    provider = TracerProvider(
        resource=create_resource("localcluster", "n1", "1.7.12"),
        id_generator=InvocationIds(),
        shutdown_on_exit=False,
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return InvocationTracer(provider)


def _one(exporter: InMemorySpanExporter, prefix: str) -> ReadableSpan:
    [span] = [s for s in exporter.get_finished_spans() if s.name.startswith(prefix)]
    return span


def test_short_targets_hide_keys() -> None:
    assert short_target(GREETER) == "Greeter/greet"
    assert short_target(COUNTER) == "Counter/{key}/add"


def test_the_ingress_span_is_a_child_of_the_incoming_traceparent(
    tracer: InvocationTracer, exporter: InMemorySpanExporter
) -> None:
    headers = {"traceparent": INCOMING, "tracestate": "congo=t61rcWkgMzE"}
    context = tracer.ingress_span(INVOCATION, COUNTER, headers)
    ingress = _one(exporter, "ingress")
    assert ingress.name == "ingress Counter/{key}/add"
    assert ingress.kind == SpanKind.INTERNAL
    assert ingress.instrumentation_scope is not None
    assert ingress.instrumentation_scope.name == "services"
    assert ingress.context.trace_id == TRACE
    assert ingress.parent is not None and ingress.parent.span_id == 0xB7AD6B7169203331
    assert ingress.context.trace_state.to_header() == "congo=t61rcWkgMzE"
    assert dict(ingress.attributes or {}) == {
        "rpc.service": "Counter",
        "rpc.method": "add",
        "restate.invocation.id": str(INVOCATION),
        "restate.invocation.target": "Counter/c1/add",
    }
    assert dict(ingress.resource.attributes) == {
        "service.name": "Restate",
        "service.namespace": "Restate",
        "service.instance.id": "localcluster/n1",
        "service.version": "1.7.12",
    }
    # the invocation's context: same trace, span id from its uuid, caused by the ingress span
    assert context == TraceContext(
        trace_id=TRACE.to_bytes(16, "big"),
        span_id=INVOCATION.uuid[8:],
        flags=1,
        trace_state="congo=t61rcWkgMzE",
        cause_span_id=ingress.context.span_id.to_bytes(8, "big"),
    )


def test_without_traceparent_the_ingress_span_starts_a_trace(
    tracer: InvocationTracer, exporter: InMemorySpanExporter
) -> None:
    context = tracer.ingress_span(INVOCATION, GREETER, {"traceparent": "bogus"})
    ingress = _one(exporter, "ingress")
    assert ingress.parent is None
    assert context is not None
    assert context.trace_id == ingress.context.trace_id.to_bytes(16, "big")


def test_an_unsampled_request_is_not_traced(
    tracer: InvocationTracer, exporter: InMemorySpanExporter
) -> None:
    headers = {"traceparent": INCOMING[:-2] + "00"}
    assert tracer.ingress_span(INVOCATION, GREETER, headers) is None
    assert exporter.get_finished_spans() == ()


def test_invocation_attempt_and_end_spans_hang_off_the_invocation_span(
    tracer: InvocationTracer, exporter: InMemorySpanExporter
) -> None:
    context = tracer.ingress_span(INVOCATION, GREETER, {"traceparent": INCOMING})
    assert context is not None
    invocation_id = str(INVOCATION)
    tracer.invocation_started(invocation_id, GREETER, context, created_at_ms=1_700_000_000_123)
    attempt = tracer.attempt_span(
        invocation_id, GREETER, context, "dp_1", "http://127.0.0.1:9080/", 6
    )
    [(name, traceparent), (state_name, state)] = attempt.headers()
    assert (name, state_name, state) == ("traceparent", "tracestate", "")
    attempt.command(pm.RunCommandMessage.TYPE, pm.RunCommandMessage(name="step1"))
    attempt.run_ended(1)
    attempt.command(pm.OutputCommandMessage.TYPE, pm.OutputCommandMessage())
    attempt.ended(suspended=False)
    tracer.invocation_ended(invocation_id, GREETER, context, None)

    ingress = _one(exporter, "ingress")
    start = _one(exporter, "invocation-start")
    attempt_span = _one(exporter, "invocation-attempt")
    end = _one(exporter, "invocation-end")
    # the invocation span has its fixed id, and the ingress span as parent
    assert start.context.span_id == int.from_bytes(INVOCATION.uuid[8:], "big")
    assert start.parent is not None and start.parent.span_id == ingress.context.span_id
    assert start.start_time == 1_700_000_000_123_000_000
    for child in (attempt_span, end):
        assert child.context.trace_id == TRACE
        assert child.parent is not None and child.parent.span_id == start.context.span_id
    # the endpoint gets the attempt's own context
    parsed = parse_traceparent(traceparent)
    assert parsed is not None
    assert parsed.trace_id == TRACE.to_bytes(16, "big")
    assert parsed.span_id == attempt_span.context.span_id.to_bytes(8, "big")
    assert parsed.sampled
    assert attempt_span.status.status_code == StatusCode.OK
    assert dict(attempt_span.attributes or {}) == {
        "rpc.system": "restate",
        "rpc.service": "Greeter",
        "rpc.method": "greet",
        "restate.invocation.id": invocation_id,
        "restate.invocation.target": "Greeter/greet",
        "restate.deployment.id": "dp_1",
        "restate.deployment.address": "http://127.0.0.1:9080/",
        "restate.deployment.service_protocol_version": 6,
    }
    assert [(e.name, dict(e.attributes or {})) for e in attempt_span.events] == [
        (
            "restate.invocation.lifecycle.new_command",
            {
                "restate.journal.command.type": "Command/Run",
                "restate.journal.command.name": "step1",
            },
        ),
        (
            "restate.invocation.lifecycle.run_ended",
            {"restate.journal.notification.id": "CompletionId: 1"},
        ),
        (
            "restate.invocation.lifecycle.new_command",
            {"restate.journal.command.type": "Command/Output"},
        ),
    ]
    assert end.status.status_code == StatusCode.OK
    assert (end.attributes or {})["restate.invocation.result"] == "success"


def test_failed_attempts_and_invocations(
    tracer: InvocationTracer, exporter: InMemorySpanExporter
) -> None:
    context = tracer.ingress_span(INVOCATION, GREETER, {})
    assert context is not None
    suspended = tracer.attempt_span("inv", GREETER, context, "dp", "http://h/", 6)
    suspended.ended(suspended=True)
    failed = tracer.attempt_span("inv", GREETER, context, "dp", "http://h/", 6)
    failed.failed()
    tracer.invocation_ended("inv", GREETER, context, Failure(418, "nope"))
    first, second = [s for s in exporter.get_finished_spans() if "attempt" in s.name]
    assert first.status.status_code == StatusCode.UNSET
    assert [e.name for e in first.events] == ["restate.invocation.lifecycle.suspended"]
    assert second.status.status_code == StatusCode.ERROR
    assert second.status.description == "transient failure"
    end = _one(exporter, "invocation-end")
    assert end.status.status_code == StatusCode.ERROR
    assert end.status.description == "nope"
    attributes = dict(end.attributes or {})
    assert attributes["restate.invocation.result"] == "failure"
    assert attributes["error.message"] == "nope"
    assert attributes["restate.invocation.error.code"] == "418"


def test_calls_made_in_an_attempt(tracer: InvocationTracer, exporter: InMemorySpanExporter) -> None:
    context = tracer.ingress_span(INVOCATION, GREETER, {"traceparent": INCOMING})
    assert context is not None
    attempt = tracer.attempt_span("inv", GREETER, context, "dp", "http://h/", 6)
    assert attempt.cause_of(pm.SetStateCommandMessage.TYPE) is None
    cause = attempt.cause_of(pm.CallCommandMessage.TYPE)
    assert cause is not None and cause == attempt.cause_of(pm.OneWayCallCommandMessage.TYPE)
    attempt.ended(suspended=False)
    attempt_span = _one(exporter, "invocation-attempt")

    callee = InvocationId(7, bytes(range(16)))
    call = for_callee(cause, callee.uuid, one_way=False)
    assert call is not None
    tracer.invocation_started(str(callee), GREETER, call, 1)
    child_start = _one(exporter, "invocation-start")
    assert child_start.parent is not None
    assert child_start.parent.span_id == attempt_span.context.span_id
    assert child_start.context.trace_id == TRACE
    exporter.clear()

    send = for_callee(cause, callee.uuid, one_way=True)
    assert send is not None
    tracer.invocation_started(str(callee), GREETER, send, 1)
    root = _one(exporter, "invocation-start")
    assert root.parent is None
    assert root.context.trace_id == int.from_bytes(callee.uuid, "big")
    assert root.context.span_id == int.from_bytes(callee.uuid[8:], "big")
    [link] = root.links
    assert (link.context.trace_id, link.context.span_id) == (TRACE, attempt_span.context.span_id)
    assert dict(link.attributes or {}) == {"restate.runtime": True}
    # ids given for one span are not reused for the next
    tracer.invocation_ended(str(callee), GREETER, send, None)
    assert _one(exporter, "invocation-end").context.span_id != root.context.span_id
