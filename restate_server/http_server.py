"""A small HTTP/1.1 server for the ingress and admin APIs: httptools parsing on an
asyncio Protocol.

The ingress answers short JSON requests at a high rate; a general web framework
spends more CPU per request than the rest of the request path together, and
importing one costs a quarter of a second at startup. This server does only what
the two APIs need: keep-alive, pipelined requests answered in order, bodies with
content-length or chunked encoding, and a size limit.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from http import HTTPStatus
from typing import Protocol
from urllib.parse import parse_qsl, unquote

import httptools

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 32 * 1024 * 1024

_REASONS = {status.value: status.phrase for status in HTTPStatus}


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


class ConnectionObserver(Protocol):
    """Told about every connection (the ingress's connection metrics)."""

    def connection_made(self) -> None: ...

    def connection_dropped(self, status: str) -> None: ...


class _HttpProtocol(asyncio.Protocol):
    def __init__(self, handler: Handler, observer: ConnectionObserver | None = None) -> None:
        self._handler = handler
        self._observer = observer
        self._drop_status = "success"  # how the connection ended, for the observer
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._queue: deque[tuple[Request, bool]] = deque()
        self._busy = False
        self._waiting: Deferred | None = None  # the answer in progress, if deferred

    # ---- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        if self._observer is not None:
            self._observer.connection_made()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._transport = None
        if self._observer is not None:
            self._observer.connection_dropped("io" if exc is not None else self._drop_status)
        self._queue.clear()
        if self._waiting is not None:
            self._waiting.abandon()
            self._waiting = None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, "upgrades are not supported")
        except httptools.HttpParserError as exc:
            self._fail(400, f"bad request: {exc}")
        except _BodyTooLarge:
            self._fail(413, "request body too large")

    # ---- parser callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        # curl sends "Expect: 100-continue" before bodies over 1 KiB and waits a second
        # for this interim answer before sending the body anyway
        for name, value in self._headers:
            if name.lower() == b"expect" and value.lower() == b"100-continue":
                if self._transport is not None:
                    self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                break

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > MAX_BODY_BYTES:
            raise _BodyTooLarge()
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        request = Request(
            parser.get_method().decode("latin-1"),
            self._url.decode("latin-1"),
            self._headers,
            b"".join(self._body),
        )
        self._queue.append((request, parser.should_keep_alive()))
        if not self._busy:
            self._next()

    # ---- handling, one request at a time per connection (answers stay in order)

    def _next(self) -> None:
        queue = self._queue
        while queue and self._transport is not None:
            request, keep_alive = queue.popleft()
            head = request.method == "HEAD"
            try:
                result = self._handler(request)
            except Exception:
                log.exception("ingress handler failed")
                result = _INTERNAL_ERROR
            if isinstance(result, Deferred):
                if result.response is None:
                    self._busy = True
                    self._waiting = result
                    result.then(partial(self._answered, keep_alive=keep_alive, head=head))
                    return
                result = result.response
            if isinstance(result, Response):
                self._write(result, keep_alive, head)
                continue
            self._busy = True
            task = asyncio.ensure_future(result)
            task.add_done_callback(partial(self._task_done, keep_alive=keep_alive, head=head))
            return
        self._busy = False

    def _task_done(self, task: asyncio.Future[Response], keep_alive: bool, head: bool) -> None:
        if task.cancelled():
            response = Response(503, b"")
        elif task.exception() is not None:
            log.error("ingress handler failed", exc_info=task.exception())
            response = _INTERNAL_ERROR
        else:
            response = task.result()
        self._answered(response, keep_alive, head)

    def _answered(self, response: Response, keep_alive: bool, head: bool = False) -> None:
        self._waiting = None
        self._write(response, keep_alive, head)
        self._next()

    def _write(self, response: Response, keep_alive: bool, head: bool = False) -> None:
        transport = self._transport
        if transport is None:
            return
        transport.write(response.encode(keep_alive, head))
        if not keep_alive:
            transport.close()
            self._transport = None

    def _fail(self, status: int, message: str) -> None:
        self._drop_status = "parse-too-large" if status == 413 else "parse"
        if self._transport is not None:
            body = f'{{"code":{status},"message":"{message}"}}'.encode()
            self._transport.write(Response(status, body).encode(keep_alive=False))
            self._transport.close()
            self._transport = None


class _BodyTooLarge(Exception):
    pass


_INTERNAL_ERROR = Response(500, b'{"code":500,"message":"internal error"}')


async def serve(
    handler: Handler, host: str, port: int, observer: ConnectionObserver | None = None
) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: _HttpProtocol(handler, observer), host, port, reuse_address=True, backlog=1024
    )
