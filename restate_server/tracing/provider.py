"""The OpenTelemetry tracer provider for services traces: resource, ids, batch export.

Set up like the real server's services tracer: resource ``service.name=Restate``,
``service.namespace=Restate``, ``service.instance.id=<cluster>/<node>``,
``service.version=<server version>`` (over anything in ``OTEL_RESOURCE_ATTRIBUTES``);
spans batched by a ``BatchSpanProcessor`` (its ``OTEL_BSP_*`` settings apply), and the
sampler from ``OTEL_TRACES_SAMPLER`` (default: parent-based, always on). The exporter's
own ``OTEL_EXPORTER_OTLP_*`` settings apply too (e.g. ``..._HEADERS`` for credentials).
Only imported when tracing is configured.
"""

from __future__ import annotations

import os
import socket

from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator, RandomIdGenerator

from restate_server.tracing.endpoint import ExporterSpec, TracingSetupError


class InvocationIds(IdGenerator):
    """Random ids, except for the next span when it is told its ids in advance.

    An invocation's span has a fixed id (see ``span_context``); the SDK's tracer only takes
    ids from its generator, so the tracer sets them here right before starting that span.
    The event loop's thread is the only one starting spans.
    """

    def __init__(self) -> None:
        self._random = RandomIdGenerator()
        self.next_trace_id: int | None = None
        self.next_span_id: int | None = None

    def generate_span_id(self) -> int:
        span_id, self.next_span_id = self.next_span_id, None
        return self._random.generate_span_id() if span_id is None else span_id

    def generate_trace_id(self) -> int:
        trace_id, self.next_trace_id = self.next_trace_id, None
        return self._random.generate_trace_id() if trace_id is None else trace_id

    def is_trace_id_random(self) -> bool:
        # invocation trace ids are uuids (ULIDs start with a timestamp): not W3C-random
        return False


def build_exporter(spec: ExporterSpec) -> SpanExporter:
    if spec.protocol == "grpc":
        # gRPC's C core logs connection events to stderr at INFO unless told otherwise
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcSpanExporter,
        )

        return GrpcSpanExporter(endpoint=spec.endpoint, insecure=spec.insecure)
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpSpanExporter,
        )
    except ImportError:
        raise TracingSetupError(
            f"tracing endpoint {spec.endpoint}: OTLP/HTTP needs the package "
            "opentelemetry-exporter-otlp-proto-http"
        ) from None
    return HttpSpanExporter(endpoint=spec.endpoint)


def create_resource(cluster_name: str, node_name: str | None, server_version: str) -> Resource:
    ours = Resource(
        {
            "service.name": "Restate",
            "service.namespace": "Restate",
            "service.instance.id": f"{cluster_name}/{node_name or socket.gethostname()}",
            "service.version": server_version,
        }
    )
    return OTELResourceDetector().detect().merge(ours)


def create_provider(
    spec: ExporterSpec, *, cluster_name: str, node_name: str | None, server_version: str
) -> TracerProvider:
    provider = TracerProvider(
        resource=create_resource(cluster_name, node_name, server_version),
        id_generator=InvocationIds(),
        shutdown_on_exit=False,  # the server shuts it down, bounded, when it stops
    )
    provider.add_span_processor(BatchSpanProcessor(build_exporter(spec)))
    return provider
