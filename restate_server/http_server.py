"""A small HTTP/1.1 server for the ingress and admin APIs: httptools parsing on an
asyncio Protocol.

The ingress answers short JSON requests at a high rate; a general web framework
spends more CPU per request than the rest of the request path together, and
importing one costs a quarter of a second at startup. This server does only what
the two APIs need: keep-alive, pipelined requests answered in order, bodies with
content-length or chunked encoding, and limits: sizes (413, 414, 431, refused before
the excess is buffered) and read timeouts (408), from ``HttpLimits``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections import deque
from functools import partial

import httptools

from restate_server.http2.frames import PREFACE
from restate_server.http2.server_connection import H2ServerConnection
from restate_server.http_messages import (
    DEFAULT_LIMITS,
    INTERNAL_ERROR,
    ConnectionObserver,
    Deferred,
    Handler,
    HttpLimits,
    Request,
    Response,
    TimedConnection,
    bad_request,
    closing,
    encode_raw_target,
    task_response,
    too_large_body,
    too_large_head,
)

__all__ = [
    "ConnectionObserver",
    "Deferred",
    "Handler",
    "HttpLimits",
    "Request",
    "Response",
    "serve",
]

log = logging.getLogger(__name__)

_HTTP1_VERSIONS = frozenset(("1.1", "1.0"))
# where the parser is in the current request
_IDLE, _HEAD, _BODY = 0, 1, 2
_REQUEST_LINE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+ \S+ HTTP/\d\.\d\r?$")


class _Refused(Exception):
    """Raised from a parser callback: the request is answered with ``response``."""

    def __init__(self, response: Response) -> None:
        self.response = response


class _HttpProtocol(asyncio.Protocol):
    def __init__(
        self,
        handler: Handler,
        observer: ConnectionObserver | None = None,
        limits: HttpLimits = DEFAULT_LIMITS,
        connections: set[TimedConnection] | None = None,
    ) -> None:
        self._handler = handler
        self._observer = observer
        self._limits = limits
        self._connections = connections  # the server's open connections (for timeouts)
        self._drop_status = "success"  # how the connection ended, for the observer
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        # the head is measured when it completes: it began in a chunk bigger than the
        # limit or spans chunks (a head inside one chunk under the limit cannot pass it)
        self._measure_head = False
        self._body: list[bytes] = []
        self._body_size = 0
        # entries: (request, keep-alive) or a refusal answered after what came before
        self._queue: deque[tuple[Request, bool] | Response] = deque()
        self._busy = False
        self._waiting: Deferred | None = None  # the answer in progress, if deferred
        self._refused = False  # no more requests are read on this connection
        self._phase = _IDLE
        self._phase_since = 0.0  # when the head or body began (monotonic)
        self._last_read = 0.0
        self._last_answer = 0.0
        self._chunk_size = 0  # of the chunk being fed to the parser
        self._head_began_in_chunk = False  # a head began inside the chunk being fed
        self._head_read = 0  # bytes of the chunks that lay wholly inside the head
        self._completed_in_chunk = 0
        # the first bytes read, while they may still be the HTTP/2 preface
        self._sniffed: bytes | None = b""

    # ---- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._last_answer = time.monotonic()
        if self._connections is not None:
            self._connections.add(self)
        if self._observer is not None:
            self._observer.connection_made()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._transport = None
        self._release_parser()
        if self._connections is not None:
            self._connections.discard(self)
        if self._observer is not None:
            self._observer.connection_dropped("io" if exc is not None else self._drop_status)
        self._queue.clear()
        if self._waiting is not None:
            self._waiting.abandon()
            self._waiting = None

    def data_received(self, data: bytes) -> None:
        if self._sniffed is not None:
            data = self._sniff(data)
            if not data:
                return
        if self._refused:
            return  # answered with a refusal once what came before is out
        self._last_read = time.monotonic()
        phase = self._phase
        if phase == _IDLE:
            if not data.isascii():
                data = encode_raw_target(data)
        elif phase == _HEAD:
            self._measure_head = True  # the head spans chunks
        self._chunk_size = len(data)
        self._head_began_in_chunk = False
        self._completed_in_chunk = 0
        try:
            self._parser.feed_data(data)
            if self._phase == _HEAD and not self._head_began_in_chunk:
                # the whole chunk lay inside a head that began earlier and goes on: bound
                # the head while it arrives, as the parser keeps a header's value until
                # the header ends (it holds at most the limit and one chunk)
                self._head_read += len(data)
                if self._head_read > self._limits.max_head_bytes:
                    self._refuse(too_large_head(), "parse-too-large")
        except _Refused as refused:
            self._refuse(refused.response, "parse-too-large")
        except httptools.HttpParserUpgrade:
            self._refuse(bad_request("upgrades are not supported"), "parse")
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _Refused):
                self._refuse(cause.response, "parse-too-large")
            else:
                self._refuse(bad_request(f"bad request: {exc}"), "parse")
        except httptools.HttpParserInvalidMethodError as exc:
            # an unknown method in a well-formed request line is 405, garbage is 400
            first_line = data.split(b"\n", 1)[0]
            if self._completed_in_chunk == 0 and phase == _IDLE and _REQUEST_LINE.match(first_line):
                self._refuse(Response(405, b"", {}), "parse")
            else:
                self._refuse(bad_request(f"bad request: {exc}"), "parse")
        except httptools.HttpParserError as exc:
            self._refuse(bad_request(f"bad request: {exc}"), "parse")

    def _sniff(self, data: bytes) -> bytes:
        """Hand a connection that opens with the HTTP/2 preface over to HTTP/2 (h2c with
        prior knowledge); give back the bytes for HTTP/1.1 otherwise (or b"" to wait)."""
        seen = self._sniffed + data if self._sniffed else data
        head = seen[: len(PREFACE)]
        if not PREFACE.startswith(head):
            self._sniffed = None
            return seen
        if len(head) < len(PREFACE):
            self._sniffed = seen  # a prefix of the preface so far: wait for more
            return b""
        self._sniffed = None
        transport = self._transport
        if transport is None:
            return b""
        self._transport = None
        self._release_parser()
        if self._connections is not None:
            self._connections.discard(self)
        h2 = H2ServerConnection(self._handler, self._limits, self._observer, self._connections)
        transport.set_protocol(h2)
        h2.start(transport, seen)
        return b""

    def _release_parser(self) -> None:
        """The parser holds this protocol's bound methods as callbacks, a reference cycle.
        Cycles wait for the collector, which the server runs rarely (gc_tuning): a cycle
        per closed connection piled up for minutes (654 connections' worth, 3 MB in a
        60 s soak). Nothing feeds the parser once the connection is gone or handed over
        (asyncio reports a lost connection from the loop, never inside a callback)."""
        self.__dict__.pop("_parser", None)

    # ---- parser callbacks

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = []
        self._head_read = 0
        self._body = []
        self._body_size = 0
        self._phase = _HEAD
        self._phase_since = self._last_read
        self._head_began_in_chunk = True
        self._measure_head = self._chunk_size > self._limits.max_head_bytes

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.max_url_bytes:
            raise _Refused(closing(414))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        self._phase_since = self._last_read
        limits = self._limits
        headers = self._headers
        if len(headers) > limits.max_headers:
            raise _Refused(too_large_head())
        if self._parser.get_http_version() not in _HTTP1_VERSIONS:
            # "HTTP/2.0" on a request line is no HTTP/2 (that starts with the preface)
            raise _Refused(bad_request("bad request: unsupported HTTP version"))
        if self._measure_head:
            size = len(self._url) + sum(len(name) + len(value) + 4 for name, value in headers)
            if size > limits.max_head_bytes:
                raise _Refused(too_large_head())
        limit = limits.max_body_bytes
        for name, value in headers:
            lowered = name.lower()
            if lowered == b"content-length":
                # refused before the body is read
                if value.strip().isdigit() and int(value) > limit:
                    raise _Refused(too_large_body())
            # curl sends "Expect: 100-continue" before bodies over 1 KiB and waits a
            # second for this interim answer before sending the body anyway
            elif (
                lowered == b"expect"
                and value.lower() == b"100-continue"
                and self._transport is not None
            ):
                self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._limits.max_body_bytes:
            raise _Refused(too_large_body())
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._phase = _IDLE
        self._completed_in_chunk += 1
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

    # ---- timeouts (checked about once a second by the server's sweep)

    def check_timeouts(self, now: float) -> None:
        if self._transport is None or self._refused:
            return
        limits = self._limits
        phase = self._phase
        head_late = phase == _HEAD and now - self._phase_since > limits.header_timeout_s
        body_stalled = phase == _BODY and now - self._last_read > limits.body_timeout_s
        if head_late or body_stalled:
            self._refuse(closing(408), "timeout")
        elif (
            phase == _IDLE
            and not self._busy
            and not self._queue
            and now - max(self._last_read, self._last_answer) > limits.idle_timeout_s
        ):
            self._drop_status = "idle"
            self._transport.close()
            self._transport = None

    # ---- handling, one request at a time per connection (answers stay in order)

    def _next(self) -> None:
        queue = self._queue
        while queue and self._transport is not None:
            entry = queue.popleft()
            if isinstance(entry, Response):  # a refusal: the last answer
                self._write(entry, keep_alive=False)
                break
            request, keep_alive = entry
            head = request.method == "HEAD"
            try:
                result = self._handler(request)
            except Exception:
                log.exception("ingress handler failed")
                result = INTERNAL_ERROR
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
        self._answered(task_response(task), keep_alive, head)

    def _answered(self, response: Response, keep_alive: bool, head: bool = False) -> None:
        self._waiting = None
        self._write(response, keep_alive, head)
        self._next()

    def _write(self, response: Response, keep_alive: bool, head: bool = False) -> None:
        transport = self._transport
        if transport is None:
            return
        transport.write(response.encode(keep_alive, head))
        self._last_answer = time.monotonic()
        if not keep_alive:
            transport.close()
            self._transport = None

    def _refuse(self, response: Response, drop_status: str) -> None:
        """Stop reading; answer ``response`` and close once every request accepted before
        it is answered (a client must not read a refusal as the answer to those)."""
        self._refused = True
        self._drop_status = drop_status
        self._queue.append(response)
        if not self._busy:
            self._next()


class _Sweeper:
    """Checks the connections of one server for timeouts about once a second."""

    def __init__(self, server: asyncio.AbstractServer, connections: set[TimedConnection]) -> None:
        self._server = server
        self._connections = connections
        self._loop = asyncio.get_running_loop()
        self._loop.call_later(1.0, self._sweep)

    def _sweep(self) -> None:
        if not self._server.is_serving() and not self._connections:
            return  # closed and drained
        now = time.monotonic()
        for connection in list(self._connections):
            connection.check_timeouts(now)
        self._loop.call_later(1.0, self._sweep)


async def serve(
    handler: Handler,
    host: str,
    port: int,
    observer: ConnectionObserver | None = None,
    limits: HttpLimits = DEFAULT_LIMITS,
    sock: socket.socket | None = None,
) -> asyncio.AbstractServer:
    """Serve on ``host:port``, or on ``sock``: a socket listening already (a worker
    shares the ingress socket its supervisor bound)."""
    loop = asyncio.get_running_loop()
    connections: set[TimedConnection] = set()

    def protocol() -> _HttpProtocol:
        return _HttpProtocol(handler, observer, limits, connections)

    if sock is not None:
        server = await loop.create_server(protocol, sock=sock, backlog=1024)
    else:
        server = await loop.create_server(protocol, host, port, reuse_address=True, backlog=1024)
    _Sweeper(server, connections)
    return server
