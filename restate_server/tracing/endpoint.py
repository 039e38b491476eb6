"""What a ``tracing-endpoint`` URI asks for: OTLP over gRPC or over HTTP.

The real server reads the scheme as '+'-separated tokens, in any order:
``http``/``https``/``grpc``/``grpc+otlp`` mean OTLP/gRPC (plaintext, TLS, plaintext,
plaintext), e.g. ``http://localhost:4317``; ``otlp+http``/``otlp+https`` (also with
``proto``) mean OTLP/HTTP with protobuf bodies, e.g. ``otlp+http://localhost:4318/v1/traces``
(the URI is used as given). ``json+otlp+http`` (OTLP/HTTP with JSON) has no Python exporter
and is refused, as are all other schemes. Pure: no OpenTelemetry import.
"""

from __future__ import annotations

from typing import Literal, NamedTuple
from urllib.parse import urlsplit, urlunsplit

from restate_server.config.errors import ConfigError

Protocol = Literal["grpc", "http/protobuf"]

_SCHEMES: dict[tuple[str, ...], tuple[str, Protocol]] = {
    ("http",): ("http", "grpc"),
    ("https",): ("https", "grpc"),
    ("grpc",): ("http", "grpc"),
    ("grpc", "otlp"): ("http", "grpc"),
    ("http", "otlp"): ("http", "http/protobuf"),
    ("https", "otlp"): ("https", "http/protobuf"),
    ("http", "otlp", "proto"): ("http", "http/protobuf"),
    ("https", "otlp", "proto"): ("https", "http/protobuf"),
}


class TracingSetupError(ConfigError):
    """The tracing configuration cannot be used; the server does not start."""


class ExporterSpec(NamedTuple):
    protocol: Protocol
    # the endpoint with its final scheme (http or https)
    endpoint: str

    @property
    def insecure(self) -> bool:
        return self.endpoint.startswith("http://")


def parse_endpoint(endpoint: str) -> ExporterSpec:
    text = endpoint.strip()
    try:
        parts = urlsplit(text)
    except ValueError as exc:
        raise TracingSetupError(f"invalid tracing endpoint: {endpoint}: URI: {exc}") from None
    if not parts.scheme:
        raise TracingSetupError(f"invalid tracing endpoint: {endpoint}: no scheme")
    tokens = tuple(sorted(parts.scheme.lower().split("+")))
    if tokens == ("http", "json", "otlp") or tokens == ("https", "json", "otlp"):
        raise TracingSetupError(
            f"invalid tracing endpoint: {endpoint}: OTLP/HTTP with JSON is not supported, "
            "use otlp+http:// (protobuf) or an OTLP/gRPC endpoint"
        )
    chosen = _SCHEMES.get(tokens)
    if chosen is None:
        raise TracingSetupError(f"invalid tracing endpoint: {endpoint}: invalid scheme")
    if not parts.netloc:
        raise TracingSetupError(f"invalid tracing endpoint: {endpoint}: no host")
    scheme, protocol = chosen
    return ExporterSpec(protocol, urlunsplit((scheme, *parts[1:])))
