"""An in-process OTLP/gRPC trace collector for tests.

    with OtlpCollector() as collector:          # listens on a free loopback port
        env = {"RESTATE_TRACING_ENDPOINT": collector.endpoint}
        ...
        spans = collector.wait_for(lambda spans: len(spans) >= 4)

It implements ``opentelemetry.proto.collector.trace.v1.TraceService/Export`` and keeps every
span it receives, flattened to a ``CollectedSpan`` (ids as lowercase hex, attribute values as
plain Python values), so assertions read like the span tree a tracing UI shows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from tests.support.ports import LOOPBACK

# opentelemetry.proto.trace.v1.Span.SpanKind values, by their short names
SPAN_KINDS = {
    trace_pb2.Span.SPAN_KIND_UNSPECIFIED: "unspecified",
    trace_pb2.Span.SPAN_KIND_INTERNAL: "internal",
    trace_pb2.Span.SPAN_KIND_SERVER: "server",
    trace_pb2.Span.SPAN_KIND_CLIENT: "client",
    trace_pb2.Span.SPAN_KIND_PRODUCER: "producer",
    trace_pb2.Span.SPAN_KIND_CONSUMER: "consumer",
}
STATUS_CODES = {
    trace_pb2.Status.STATUS_CODE_UNSET: "unset",
    trace_pb2.Status.STATUS_CODE_OK: "ok",
    trace_pb2.Status.STATUS_CODE_ERROR: "error",
}


@dataclass(frozen=True)
class CollectedLink:
    trace_id: str
    span_id: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class CollectedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    status: str
    status_message: str
    events: list[str]
    # the attributes of each event, in the order of ``events``
    event_attributes: list[dict[str, Any]]
    links: list[CollectedLink]
    scope: str
    resource: dict[str, Any] = field(default_factory=dict)
    trace_state: str = ""


def _value(value: common_pb2.AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, which)


def _attributes(pairs: Any) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def _link(link: trace_pb2.Span.Link) -> CollectedLink:
    return CollectedLink(link.trace_id.hex(), link.span_id.hex(), _attributes(link.attributes))


def _flatten(request: trace_service_pb2.ExportTraceServiceRequest) -> list[CollectedSpan]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    CollectedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex() or None,
                        name=span.name,
                        kind=SPAN_KINDS.get(span.kind, str(span.kind)),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes=_attributes(span.attributes),
                        status=STATUS_CODES.get(span.status.code, str(span.status.code)),
                        status_message=span.status.message,
                        events=[event.name for event in span.events],
                        event_attributes=[_attributes(event.attributes) for event in span.events],
                        links=[_link(link) for link in span.links],
                        scope=scope_spans.scope.name,
                        resource=resource,
                        trace_state=span.trace_state,
                    )
                )
    return spans


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, collector: OtlpCollector) -> None:
        self._collector = collector

    def Export(  # the gRPC method's name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self._collector._add(_flatten(request), dict(context.invocation_metadata()))
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpCollector:
    """A gRPC server on 127.0.0.1 that records exported spans (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._spans: list[CollectedSpan] = []
        self.exports = 0
        # gRPC metadata of the last Export call (e.g. tracing-headers)
        self.last_metadata: dict[str, str] = {}
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), self._server)
        self.port = self._server.add_insecure_port(f"{LOOPBACK}:0")

    @property
    def endpoint(self) -> str:
        """What ``tracing-endpoint`` takes (OTLP over gRPC, plaintext)."""
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> OtlpCollector:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=None)

    def __enter__(self) -> OtlpCollector:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _add(self, spans: list[CollectedSpan], metadata: dict[str, str]) -> None:
        with self._lock:
            self._spans.extend(spans)
            self.exports += 1
            self.last_metadata = metadata
            self._lock.notify_all()

    @property
    def spans(self) -> list[CollectedSpan]:
        with self._lock:
            return list(self._spans)

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def wait_for(
        self, done: Callable[[list[CollectedSpan]], bool], timeout: float = 20.0
    ) -> list[CollectedSpan]:
        """Wait until ``done(spans)`` holds for the spans so far; return them."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not done(list(self._spans)):
                left = deadline - time.monotonic()
                if left <= 0:
                    names = sorted(span.name for span in self._spans)
                    raise TimeoutError(f"collector: condition not met in {timeout}s; got {names}")
                self._lock.wait(left)
            return list(self._spans)
