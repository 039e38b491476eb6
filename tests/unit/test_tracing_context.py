"""Tracing without OpenTelemetry: traceparent text, invocation span contexts, the stored
record, endpoint schemes, and the partition carrying span contexts (no sockets)."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest

from restate_server.partition.actions import (
    IngressReply,
    InvocationSpanEnd,
    InvocationSpanStart,
    InvokeAttempt,
)
from restate_server.partition.commands import JournalCommand
from restate_server.protocol import messages as pm
from restate_server.protocol.ids import InvocationId
from restate_server.storage.records import (
    InvocationStatus,
    Target,
    TraceContext,
    decode_status,
    encode,
)
from restate_server.tracing.endpoint import TracingSetupError, parse_endpoint
from restate_server.tracing.span_context import child_of, for_callee, linked_to
from restate_server.tracing.w3c import format_traceparent, parse_traceparent
from tests.unit.fake_schema import FakeSchema
from tests.unit.partition_harness import GREETER, Harness, of_type

TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")
SPAN = bytes.fromhex("b7ad6b7169203331")
UUID = bytes.fromhex("61cc1c1b8f689155f921116acedad621")


# ---- traceparent


def test_parse_traceparent() -> None:
    parsed = parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    assert parsed is not None
    assert (parsed.trace_id, parsed.span_id, parsed.flags, parsed.sampled) == (
        TRACE,
        SPAN,
        1,
        True,
    )
    unsampled = parse_traceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00")
    assert unsampled is not None and not unsampled.sampled
    # a later version may append fields
    assert parse_traceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-xyz")


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "garbage",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",  # no flags
        "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",  # uppercase
        "00-00000000000000000000000000000000-b7ad6b7169203331-01",  # zero trace id
        "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",  # zero span id
        "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",  # version ff
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",  # 00 has 4 fields
        "00-0af7651916cd43dd8448eb211c8031-b7ad6b7169203331-01",  # short trace id
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b71692033-01",  # short span id
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1",  # short flags
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b716920333g-01",  # not hex
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01, 00-1-2-03",  # two headers
    ],
)
def test_invalid_traceparent_is_ignored(value: str | None) -> None:
    assert parse_traceparent(value) is None


def test_format_traceparent_passes_on_only_the_sampled_flag() -> None:
    assert format_traceparent(TRACE, SPAN, 1) == (
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    )
    # the W3C level-2 random-trace-id flag is not passed on (as the real server)
    assert format_traceparent(TRACE, SPAN, 3).endswith("-01")
    assert format_traceparent(TRACE, SPAN, 0).endswith("-00")
    text = format_traceparent(TRACE, SPAN, 1)
    assert parse_traceparent(text) == (TRACE, SPAN, 1)


# ---- an invocation's span context


def test_a_child_invocation_shares_the_trace_and_takes_its_span_id_from_its_uuid() -> None:
    cause = TraceContext(TRACE, SPAN, 1, "congo=t61rcWkgMzE")
    child = child_of(cause, UUID)
    assert child == TraceContext(
        trace_id=TRACE,
        span_id=bytes.fromhex("f921116acedad621"),  # the real server's id for this uuid
        flags=1,
        trace_state="congo=t61rcWkgMzE",
        cause_span_id=SPAN,
    )
    assert for_callee(cause, UUID, one_way=False) == child


def test_a_one_way_callee_starts_its_own_trace_linked_to_the_cause() -> None:
    cause = TraceContext(TRACE, SPAN, 1, "congo=t61rcWkgMzE")
    linked = linked_to(cause, UUID)
    assert linked == TraceContext(
        trace_id=UUID,
        span_id=UUID[8:],
        flags=1,
        trace_state="",
        cause_span_id=SPAN,
        cause_trace_id=TRACE,
    )
    assert for_callee(cause, UUID, one_way=True) == linked


def test_unsampled_causes_give_no_context() -> None:
    cause = TraceContext(TRACE, SPAN, 0)
    assert child_of(cause, UUID) is None
    assert linked_to(cause, UUID) is None


# ---- the stored record


def _status(**kwargs: object) -> InvocationStatus:
    return InvocationStatus(
        status="invoked",
        target=Target("Greeter", "greet", None, "service", None),
        created_at=1,
        modified_at=2,
        random_seed=3,
        **kwargs,  # type: ignore[arg-type]
    )


def test_trace_context_round_trips_with_the_status() -> None:
    context = TraceContext(TRACE, UUID[8:], 1, "a=b", SPAN, None)
    decoded = decode_status(encode(_status(trace_context=context)))
    assert decoded.trace_context == context
    assert decode_status(encode(_status())).trace_context is None


def test_records_written_before_the_field_existed_still_decode() -> None:
    fields = msgspec.msgpack.decode(encode(_status(trace_id="t")))
    position = InvocationStatus.__struct_fields__.index("trace_context")
    assert fields[position] is None and fields[position - 1] == "t"
    old = msgspec.msgpack.encode(fields[:position])  # a record without trace_context
    decoded = decode_status(old)
    assert decoded.trace_context is None
    assert decoded.trace_id == "t"


# ---- endpoint schemes (as the real server reads them)


@pytest.mark.parametrize(
    ("endpoint", "protocol", "final"),
    [
        ("http://localhost:4317", "grpc", "http://localhost:4317"),
        ("https://collector:4317", "grpc", "https://collector:4317"),
        ("grpc://localhost:4317", "grpc", "http://localhost:4317"),
        ("otlp+grpc://localhost:4317", "grpc", "http://localhost:4317"),
        ("http://localhost:4318", "grpc", "http://localhost:4318"),  # the scheme decides
        ("otlp+http://h:4318/v1/traces", "http/protobuf", "http://h:4318/v1/traces"),
        ("http+otlp://h:4318/v1/traces", "http/protobuf", "http://h:4318/v1/traces"),
        ("otlp+proto+https://h/v1/traces", "http/protobuf", "https://h/v1/traces"),
    ],
)
def test_endpoint_schemes(endpoint: str, protocol: str, final: str) -> None:
    spec = parse_endpoint(endpoint)
    assert (spec.protocol, spec.endpoint) == (protocol, final)
    assert spec.insecure == final.startswith("http://")


@pytest.mark.parametrize(
    "endpoint", ["localhost:4317", "ftp://h:1", "otlp+json+http://h:4318", "http://"]
)
def test_bad_endpoints_stop_the_start(endpoint: str) -> None:
    with pytest.raises(TracingSetupError, match="invalid tracing endpoint"):
        parse_endpoint(endpoint)


# ---- the partition keeps and passes on span contexts (it never imports OpenTelemetry)


@pytest.fixture
def h(tmp_path) -> Iterator[Harness]:
    harness = Harness(str(tmp_path / "db"), FakeSchema())
    yield harness
    harness.close()


def test_a_traced_invocation_keeps_its_context_and_reports_start_and_end(h: Harness) -> None:
    context = TraceContext(TRACE, UUID[8:], 1, "", SPAN)
    invocation_id, actions = h.invoke(GREETER, trace_context=context)
    assert h.status(invocation_id).trace_context == context
    [start] = of_type(actions, InvocationSpanStart)
    assert (start.invocation_id, start.target, start.trace_context) == (
        invocation_id,
        GREETER,
        context,
    )
    assert start.created_at == h.status(invocation_id).created_at
    [attempt] = of_type(actions, InvokeAttempt)
    assert attempt.trace_context == context

    # resumed after a suspension: the context again, but no second start span
    actions = h.sdk(invocation_id, _call())
    [callee] = [a.invocation_id for a in of_type(actions, InvokeAttempt)]
    h.suspend(invocation_id, [2])
    resumed = h.end(callee)
    [again] = [a for a in of_type(resumed, InvokeAttempt) if a.invocation_id == invocation_id]
    assert again.trace_context == context
    assert not of_type(resumed, InvocationSpanStart)

    actions = h.end(invocation_id)
    [end] = of_type(actions, InvocationSpanEnd)
    assert (end.trace_context, end.failure) == (context, None)
    assert of_type(actions, IngressReply)


def test_untraced_invocations_emit_no_span_actions(h: Harness) -> None:
    invocation_id, actions = h.invoke(GREETER)
    assert h.status(invocation_id).trace_context is None
    [attempt] = of_type(actions, InvokeAttempt)
    assert attempt.trace_context is None
    actions += h.end(invocation_id)
    assert not of_type(actions, InvocationSpanStart)
    assert not of_type(actions, InvocationSpanEnd)


def _call() -> pm.CallCommandMessage:
    return pm.CallCommandMessage(
        service_name="Greeter",
        handler_name="greet",
        parameter=b'"p"',
        invocation_id_notification_idx=1,
        result_completion_id=2,
    )


def _send() -> pm.OneWayCallCommandMessage:
    return pm.OneWayCallCommandMessage(
        service_name="Greeter",
        handler_name="greet",
        parameter=b'"p"',
        invocation_id_notification_idx=1,
    )


@pytest.mark.parametrize("one_way", [False, True])
def test_calls_of_a_traced_attempt_derive_the_callees_context(h: Harness, one_way: bool) -> None:
    caller, _ = h.invoke(GREETER, trace_context=TraceContext(TRACE, UUID[8:], 1, "", SPAN))
    attempt_span = TraceContext(TRACE, bytes.fromhex("de53e954e2671de3"), 1, "s=1")
    message = _send() if one_way else _call()
    epoch = h.status(caller).epoch
    body = pm.encode_message(message)
    command = JournalCommand(caller, epoch, message.TYPE, body, message)
    command.trace_context = attempt_span
    actions = h.apply(command)
    [started] = [a for a in of_type(actions, InvokeAttempt) if a.invocation_id != caller]
    callee = InvocationId.from_bytes(started.invocation_id)
    expected = for_callee(attempt_span, callee.uuid, one_way)
    assert started.trace_context == expected
    assert h.status(started.invocation_id).trace_context == expected
    [start] = of_type(actions, InvocationSpanStart)
    assert start.invocation_id == started.invocation_id
