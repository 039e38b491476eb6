"""A transport standing in for a socket under our HTTP server's protocol."""

from __future__ import annotations

from typing import Any

from restate_server.http_messages import Deferred, HttpLimits, Request, Response


class FakeTransport:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.chunks.append(data)

    def close(self) -> None:
        self.closed = True

    @property
    def status_lines(self) -> list[bytes]:
        return [chunk.split(b"\r\n", 1)[0] for chunk in self.chunks]

    def is_closing(self) -> bool:
        return self.closed

    def set_protocol(self, protocol: object) -> None:
        self.protocol = protocol


# small limits, so that tests reach them with little data
SMALL_LIMITS = HttpLimits(
    max_body_bytes=1000,
    max_head_bytes=2000,
    max_url_bytes=500,
    max_headers=10,
    header_timeout_s=10,
    body_timeout_s=30,
    idle_timeout_s=60,
)


class RecordingApp:
    """A handler that records requests: ``/later...`` answers through a Deferred the test
    resolves, ``/big`` with 100,000 bytes, ``/echo`` with ``ok:`` and the body, the rest
    ``ok``."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.deferred: list[Deferred] = []

    def __call__(self, request: Request) -> Any:
        self.requests.append(request)
        path = request.raw_path
        if path.startswith("/later"):
            deferred = Deferred()
            self.deferred.append(deferred)
            return deferred
        if path.startswith("/big"):
            return Response(200, b"x" * 100_000)
        if path.startswith("/echo"):
            return Response(200, b"ok:" + request.body, {"content-type": "text/plain"})
        return Response(200, b"ok")
