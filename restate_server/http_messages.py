"""Requests, responses and limits shared by the HTTP/1.1 and HTTP/2 sides of the
ingress and admin servers (``http_server``, ``http2.server_connection``)."""

from __future__ import annotations

import json
import logging
from asyncio import Future
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol
from urllib.parse import parse_qsl, unquote

log = logging.getLogger(__name__)

_REASONS = {status.value: status.phrase for status in HTTPStatus}
# the real server's (hyper's) phrases where Python's differ
_REASONS |= {413: "Payload Too Large", 414: "URI Too Long"}


class Request:
    """What a handler sees: method, raw path (with query), headers and the whole body.

    ``header_list`` keeps every header line in order (names lower-cased), for passing
    headers on; ``headers`` maps each name to its values joined by ", ".
    """

    __slots__ = ("body", "header_list", "headers", "method", "raw_path")

    def __init__(
        self,
        method: str,
        raw_path: str,
        raw_headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> None:
        self.method = method
        self.raw_path = raw_path
        self.body = body
        header_list: list[tuple[str, str]] = []
        headers: dict[str, str] = {}
        for raw_name, raw_value in raw_headers:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            header_list.append((name, value))
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        self.header_list = header_list
        self.headers = headers

    @property
    def path(self) -> str:
        """The path, percent-decoded, without the query."""
        return unquote(self.raw_path.split("?", 1)[0])

    @property
    def query(self) -> dict[str, str]:
        """Query parameters (the first value of each name)."""
        if "?" not in self.raw_path:
            return {}
        pairs = parse_qsl(self.raw_path.split("?", 1)[1], keep_blank_values=True)
        query: dict[str, str] = {}
        for name, value in pairs:
            query.setdefault(name, value)
        return query


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(
        self, status: int = 200, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else {}

    def encode(self, keep_alive: bool, head: bool = False) -> bytes:
        reason = _REASONS.get(self.status, "")
        lines = [f"HTTP/1.1 {self.status} {reason}"]
        for name, value in self.headers.items():
            lines.append(f"{name}: {value}")
        lines.append(f"content-length: {len(self.body)}")
        if not keep_alive:
            lines.append("connection: close")
        head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return head_bytes if head else head_bytes + self.body


class Deferred:
    """A response that a callback will deliver later (no task, no event-loop hop).

    The hot path of the ingress (calls and sends) answers when the partition has
    committed; the commit callback resolves this directly and the response is
    written in the same turn of the event loop.
    """

    __slots__ = ("_callback", "on_abandon", "response")

    def __init__(self) -> None:
        self.response: Response | None = None
        self._callback: Callable[[Response], None] | None = None
        # called if the client goes away before the answer: stop waiting for it
        self.on_abandon: Callable[[], None] | None = None

    def resolve(self, response: Response) -> None:
        if self.response is not None:
            return
        self.response = response
        callback, self._callback = self._callback, None
        if callback is not None:
            callback(response)

    def then(self, callback: Callable[[Response], None]) -> None:
        self._callback = callback

    def abandon(self) -> None:
        self._callback = None
        if self.response is None and self.on_abandon is not None:
            self.on_abandon()


# A handler answers at once, later through a Deferred, or as a coroutine.
Handler = Callable[[Request], "Response | Deferred | Awaitable[Response]"]


class TimedConnection(Protocol):
    """A connection the server's sweep checks for timeouts about once a second."""

    def check_timeouts(self, now: float) -> None: ...


class ConnectionObserver(Protocol):
    """Told about every connection (the ingress's connection metrics)."""

    def connection_made(self) -> None: ...

    def connection_dropped(self, status: str) -> None: ...


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one request may cost before it is refused (``[py.http]``)."""

    max_body_bytes: int = 32 * 1024 * 1024  # 413
    max_head_bytes: int = 64 * 1024  # request line + headers: 431
    max_url_bytes: int = 65_534  # the real server's URI limit: 414
    max_headers: int = 100  # 431
    header_timeout_s: float = 10.0  # the head must arrive within this: 408
    body_timeout_s: float = 30.0  # a body that stops arriving this long: 408
    idle_timeout_s: float = 120.0  # a kept-alive connection with nothing in flight


DEFAULT_LIMITS = HttpLimits()


def bad_request(message: str) -> Response:
    return Response(
        400,
        json.dumps({"code": 400, "message": message}).encode(),
        {"content-type": "application/json"},
    )


def closing(status: int) -> Response:
    return Response(status, b"")


def too_large_head() -> Response:
    return Response(431, b"")


def too_large_body() -> Response:
    # the real server's answer
    return Response(413, b"length limit exceeded", {"content-type": "text/plain; charset=utf-8"})


INTERNAL_ERROR = Response(500, b'{"code":500,"message":"internal error"}')


def encode_raw_target(data: bytes) -> bytes:
    """Percent-encode non-ASCII bytes of the request line that starts ``data`` (clients
    may send a raw UTF-8 path, which the parser refuses; the real server accepts it)."""
    end = data.find(b"\n")
    line = data if end < 0 else data[:end]
    if line.isascii():
        return data
    encoded = b"".join(b"%%%02X" % byte if byte >= 0x80 else bytes((byte,)) for byte in line)
    return encoded + data[len(line) :]


def task_response(task: Future[Response]) -> Response:
    """The answer of a handler that ran as a task: its result, 503 if it was cancelled
    (the server is stopping), 500 if it failed."""
    if task.cancelled():
        return Response(503, b"")
    exc = task.exception()
    if exc is not None:
        log.error("ingress handler failed", exc_info=exc)
        return INTERNAL_ERROR
    return task.result()
