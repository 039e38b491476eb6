"""OpenTelemetry traces of invocations, exported over OTLP when ``tracing-endpoint`` is set.

Off by default and free when off: nothing here imports ``opentelemetry`` until
:func:`start_tracing` finds an endpoint, and the rest of the server only holds ``None``
instead of a tracer. The span layout mirrors the real server (see ``docs/tracing.md``):
``ingress``, ``invocation-start``, ``invocation-attempt`` and ``invocation-end`` spans,
with each invocation's span context derived from its id and stored with it
(:class:`restate_server.storage.records.TraceContext`), so that attempts after a restart
continue the same trace.

Modules: ``w3c`` (traceparent text), ``span_context`` (an invocation's span context),
``endpoint`` (which exporter an endpoint URI means) are pure and import no OpenTelemetry;
``provider`` and ``tracer`` do, and are only loaded by :func:`start_tracing`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from restate_server.tracing.tracer import InvocationTracer


def start_tracing(config: Any, server_version: str) -> InvocationTracer | None:
    """The tracer for ``config``, exporting to its services endpoint; None when unset.

    Raises :class:`restate_server.tracing.endpoint.TracingSetupError` for an endpoint the
    server cannot export to (as the real server, which refuses to start then).
    """
    endpoint = config.tracing_services_endpoint or config.tracing_endpoint
    if not endpoint:
        return None
    from restate_server.tracing.endpoint import TracingSetupError, parse_endpoint

    exporter_spec = parse_endpoint(endpoint)  # checked before the heavy imports
    try:
        from restate_server.tracing.provider import create_provider
        from restate_server.tracing.tracer import InvocationTracer
    except ImportError as exc:
        raise TracingSetupError(
            f"tracing-endpoint is set, but OpenTelemetry is not installed ({exc}); install "
            "opentelemetry-sdk and opentelemetry-exporter-otlp-proto-grpc"
        ) from None

    provider = create_provider(
        exporter_spec,
        cluster_name=config.cluster_name,
        node_name=config.node_name,
        server_version=server_version,
    )
    return InvocationTracer(provider)
