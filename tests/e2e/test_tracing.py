"""OpenTelemetry traces of invocations, exported over OTLP/gRPC to an in-process collector.

The span tree mirrors the real server's (docs/tracing.md): for a request with a
``traceparent``, ``ingress X`` is its child, ``invocation-start X`` (the invocation's span)
the ingress span's, and ``invocation-attempt X`` / ``invocation-end X`` the invocation
span's; a call made by an attempt is a child of that attempt's span. Endpoints receive
the attempt span's context as ``traceparent``; without a tracing endpoint they receive
none (as from the real server).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.endpoints import PyEndpoint, TsEndpoint
from tests.support.otlp_collector import CollectedSpan, OtlpCollector
from tests.support.server import RealRestateServerProcess, RestateServerProcess

TRACING_APP = Path(__file__).resolve().parent / "ts_services" / "tracing_app.mjs"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT}-01"
TRACESTATE = "congo=t61rcWkgMzE"


@pytest.fixture
def collector() -> Iterator[OtlpCollector]:
    """Listed first by the tests, so it stops after the servers (which flush at stop)."""
    with OtlpCollector() as running:
        yield running


def _tracing_env(collector: OtlpCollector) -> dict[str, str]:
    # export every 100 ms instead of every 5 s, so tests need not wait
    return {"RESTATE_TRACING_ENDPOINT": collector.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"}


def _named(spans: list[CollectedSpan], name: str) -> list[CollectedSpan]:
    return [span for span in spans if span.name == name]


def _one(spans: list[CollectedSpan], name: str, invocation_id: str | None = None) -> CollectedSpan:
    found = [
        span
        for span in _named(spans, name)
        if invocation_id is None or span.attributes["restate.invocation.id"] == invocation_id
    ]
    assert len(found) == 1, (name, [s.name for s in spans])
    return found[0]


def _traceparent_of(span: CollectedSpan) -> str:
    return f"00-{span.trace_id}-{span.span_id}-01"


@pytest.mark.parametrize("which", ["ours", "real"])
def test_nested_calls_are_one_trace_under_the_incoming_traceparent(
    collector: OtlpCollector,
    which: str,
    server: Callable[..., RestateServerProcess],
    real_server: Callable[..., RealRestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
) -> None:
    services = ts_endpoint()
    traced = ts_endpoint(TRACING_APP, name="traced")
    env = _tracing_env(collector)
    srv = server(env=env) if which == "ours" else real_server(env=env)
    srv.register(services.url)
    srv.register(traced.url)

    headers = {"traceparent": TRACEPARENT, "tracestate": TRACESTATE}
    response = srv.call("/FanOut/greetMany", 2, headers=headers)
    assert response.status == 200, response.body
    assert response.json() == ["Hello, 0!", "Hello, 1!"]
    response = srv.call("/Traced/callChild", None, headers=headers)
    assert response.status == 200, response.body
    seen = response.json()
    if which == "real":
        srv.stop()  # the real server exports its spans when it stops

    # every span checked below (with worker processes each exports its own)
    spans = collector.wait_for(
        lambda s: (
            len(_named(s, "invocation-end Greeter/greet")) == 2
            and len(_named(s, "invocation-attempt Greeter/greet")) == 2
            and bool(_named(s, "invocation-end FanOut/greetMany"))
            and bool(_named(s, "invocation-end Traced/callChild"))
            and bool(_named(s, "invocation-attempt Traced/attemptHeaders"))
            and bool(_named(s, "invocation-start Traced/attemptHeaders"))
        )
    )
    assert {span.trace_id for span in spans} == {TRACE_ID}
    for span in spans:
        assert span.kind == "internal"
        assert span.scope == "services"
        assert span.trace_state == TRACESTATE
        assert span.resource["service.name"] == "Restate"
        assert span.resource["service.version"] == "1.7.12"

    ingress = _one(spans, "ingress FanOut/greetMany")
    fan_out_id = ingress.attributes["restate.invocation.id"]
    assert ingress.parent_span_id == PARENT
    base_attributes = {
        "rpc.service": "FanOut",
        "rpc.method": "greetMany",
        "restate.invocation.id": fan_out_id,
        "restate.invocation.target": "FanOut/greetMany",
    }
    # (the real server adds client.socket.address and .port)
    assert base_attributes.items() <= ingress.attributes.items()
    start = _one(spans, "invocation-start FanOut/greetMany")
    assert start.parent_span_id == ingress.span_id
    assert start.attributes == base_attributes
    attempt = _one(spans, "invocation-attempt FanOut/greetMany")
    assert attempt.parent_span_id == start.span_id
    assert attempt.status == "ok"
    assert attempt.attributes == {
        **base_attributes,
        "rpc.system": "restate",
        "restate.deployment.id": attempt.attributes["restate.deployment.id"],
        "restate.deployment.address": f"{services.url}/",
        "restate.deployment.service_protocol_version": 6,
    }
    assert attempt.attributes["restate.deployment.id"].startswith("dp_")
    assert [a["restate.journal.command.type"] for a in attempt.event_attributes] == [
        "Command/Call",
        "Command/Call",
        "Command/Output",
    ]
    end = _one(spans, "invocation-end FanOut/greetMany")
    assert end.parent_span_id == start.span_id
    assert end.status == "ok"
    assert end.attributes == {**base_attributes, "restate.invocation.result": "success"}

    # each Greeter call: its invocation span is a child of the calling attempt's span
    greets = _named(spans, "invocation-start Greeter/greet")
    assert len(greets) == 2
    for greet in greets:
        assert greet.parent_span_id == attempt.span_id
        greet_id = greet.attributes["restate.invocation.id"]
        assert greet_id != fan_out_id
        child_attempt = _one(spans, "invocation-attempt Greeter/greet", greet_id)
        assert child_attempt.parent_span_id == greet.span_id
        assert _one(spans, "invocation-end Greeter/greet", greet_id).parent_span_id == (
            greet.span_id
        )
    fan_out_trace = [s for s in spans if "Traced" not in s.name]
    assert len(fan_out_trace) == 10, sorted(s.name for s in fan_out_trace)

    # the endpoint receives the attempt span's context (and the trace state)
    own = _one(spans, "invocation-attempt Traced/callChild")
    child = _one(spans, "invocation-attempt Traced/attemptHeaders")
    assert seen["own"] == {"traceparent": _traceparent_of(own), "tracestate": TRACESTATE}
    assert seen["child"] == {"traceparent": _traceparent_of(child), "tracestate": TRACESTATE}
    assert _one(spans, "invocation-start Traced/attemptHeaders").parent_span_id == own.span_id


def test_one_way_calls_start_a_linked_trace(
    collector: OtlpCollector,
    server: Callable[..., RestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
) -> None:
    traced = ts_endpoint(TRACING_APP, name="traced")
    srv = server(env=_tracing_env(collector))
    srv.register(traced.url)
    response = srv.call("/Traced/sendChild", None, headers={"traceparent": TRACEPARENT})
    assert response.status == 200, response.body
    spans = collector.wait_for(lambda s: bool(_named(s, "invocation-end Traced/attemptHeaders")))
    sender = _one(spans, "invocation-attempt Traced/sendChild")
    assert sender.trace_id == TRACE_ID
    root = _one(spans, "invocation-start Traced/attemptHeaders")
    assert root.parent_span_id is None
    assert root.trace_id != TRACE_ID
    assert root.trace_id.endswith(root.span_id)  # both from the callee's uuid
    [link] = root.links
    assert (link.trace_id, link.span_id) == (TRACE_ID, sender.span_id)
    assert link.attributes == {"restate.runtime": True}
    child = _one(spans, "invocation-attempt Traced/attemptHeaders")
    assert (child.trace_id, child.parent_span_id) == (root.trace_id, root.span_id)


def test_failures_are_marked_on_attempt_and_end_spans(
    collector: OtlpCollector,
    server: Callable[..., RestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
) -> None:
    traced = ts_endpoint(TRACING_APP, name="traced")
    srv = server(env=_tracing_env(collector))
    srv.register(traced.url)
    assert srv.call("/Traced/fail", "nope").status == 418
    assert srv.call("/Traced/flaky", "t1").status == 200
    spans = collector.wait_for(
        lambda s: (
            bool(_named(s, "invocation-end Traced/fail"))
            and bool(_named(s, "invocation-end Traced/flaky"))
        )
    )
    end = _one(spans, "invocation-end Traced/fail")
    assert (end.status, end.status_message) == ("error", "nope")
    assert end.attributes["restate.invocation.result"] == "failure"
    assert end.attributes["error.message"] == "nope"
    assert end.attributes["restate.invocation.error.code"] == "418"
    first, second = sorted(
        _named(spans, "invocation-attempt Traced/flaky"), key=lambda span: span.start_ns
    )
    assert (first.status, first.status_message) == ("error", "transient failure")
    assert second.status == "ok"
    assert first.parent_span_id == second.parent_span_id


def test_attempts_after_a_crash_continue_the_trace(
    collector: OtlpCollector,
    server: Callable[..., RestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
) -> None:
    traced = ts_endpoint(TRACING_APP, name="traced")
    srv = server(env=_tracing_env(collector))
    srv.register(traced.url)
    response = srv.call("/Traced/gated/send", "g1", headers={"traceparent": TRACEPARENT})
    assert response.status == 202, response.body
    invocation_id = response.json()["invocationId"]
    traced.wait_at_gate("g1")
    spans = collector.wait_for(lambda s: bool(_named(s, "invocation-start Traced/gated")))
    start = _one(spans, "invocation-start Traced/gated")
    assert start.attributes["restate.invocation.id"] == invocation_id

    srv.kill9()  # the first attempt's span is lost with the process
    srv.start()
    # the invocation resumes: a second attempt runs the handler again
    traced.process.wait_until(
        lambda: len([line for line in traced.side_effects() if line.startswith("g1 ")]) == 2,
        15.0,
        "the second attempt of g1",
    )
    traced.open_gate("g1")
    spans = collector.wait_for(lambda s: bool(_named(s, "invocation-end Traced/gated")))
    [attempt] = _named(spans, "invocation-attempt Traced/gated")
    assert (attempt.trace_id, attempt.parent_span_id) == (TRACE_ID, start.span_id)
    end = _one(spans, "invocation-end Traced/gated")
    assert (end.trace_id, end.parent_span_id) == (TRACE_ID, start.span_id)
    first, second = [line.split(" ", 1)[1] for line in traced.side_effects()]
    assert first.startswith(f"00-{TRACE_ID}-") and first != second
    assert second == _traceparent_of(attempt)


@pytest.mark.parametrize("which", ["ours", "real"])
def test_without_a_tracing_endpoint_no_traceparent_is_sent(
    which: str,
    server: Callable[..., RestateServerProcess],
    real_server: Callable[..., RealRestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
) -> None:
    traced = ts_endpoint(TRACING_APP, name="traced")
    srv = server() if which == "ours" else real_server()
    srv.register(traced.url)
    response = srv.call("/Traced/callChild", None, headers={"traceparent": TRACEPARENT})
    assert response.status == 200, response.body
    none = {"traceparent": None, "tracestate": None}
    assert json.loads(response.body) == {"own": none, "child": none}
    if which == "ours":
        # tracing off loads nothing of it: no gRPC (the exporter's transport) in the process
        maps = Path(f"/proc/{srv.process.pid}/maps").read_text()
        assert "cygrpc" not in maps and "opentelemetry" not in maps


def test_buffered_spans_are_exported_at_shutdown(
    collector: OtlpCollector,
    server: Callable[..., RestateServerProcess],
    ts_endpoint: Callable[..., TsEndpoint],
) -> None:
    traced = ts_endpoint(TRACING_APP, name="traced")
    env = {**_tracing_env(collector), "OTEL_BSP_SCHEDULE_DELAY": "600000"}
    srv = server(env=env)
    srv.register(traced.url)
    assert srv.call("/Traced/attemptHeaders", None).status == 200
    assert collector.spans == []  # nothing exported yet: the batch waits ten minutes
    assert srv.stop() == 0
    names = sorted(span.name for span in collector.spans)
    assert names == [
        "ingress Traced/attemptHeaders",
        "invocation-attempt Traced/attemptHeaders",
        "invocation-end Traced/attemptHeaders",
        "invocation-start Traced/attemptHeaders",
    ]


def test_every_sdk_takes_the_trace_headers(
    collector: OtlpCollector,
    server: Callable[..., RestateServerProcess],
    endpoint: TsEndpoint | PyEndpoint,
) -> None:
    srv = server(env=_tracing_env(collector))
    srv.register(endpoint.url)
    # no incoming traceparent: a new trace, and an empty tracestate header on the attempt
    assert srv.call("/Greeter/greet", "A").json() == "Hello, A!"
    spans = collector.wait_for(lambda s: bool(_named(s, "invocation-end Greeter/greet")))
    assert _one(spans, "invocation-attempt Greeter/greet").status == "ok"
