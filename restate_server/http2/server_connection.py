"""The server side of HTTP/2 cleartext (prior knowledge) for the ingress and admin ports.

A client that opens with the HTTP/2 preface is handed over here from the HTTP/1.1
protocol (``http_server``), so both versions share one port, one handler and one set of
limits. Each stream is one request: its headers and whole body are collected, then the
same handler as for HTTP/1.1 answers it; unlike HTTP/1.1, streams are answered as soon
as each is ready, not in order.

Limits map onto HTTP/2's own mechanisms: at most ``MAX_CONCURRENT_STREAMS`` streams
(more are refused with REFUSED_STREAM), frames up to the size we announce (larger ones
end the connection), a header block larger than ``max_head_bytes`` is answered 431
without being decoded (then the connection is closed, its HPACK state being lost), too
many headers 431, a body over ``max_body_bytes`` 413 (announced or while it arrives), a
body that stops arriving 408, and an idle connection is closed with GOAWAY.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from functools import partial

from restate_server.http2.framed import FramedConnection, ProtocolViolation
from restate_server.http2.frames import (
    CONTINUATION,
    DATA,
    DEFAULT_MAX_FRAME,
    DEFAULT_WINDOW,
    ERROR_CANCEL,
    ERROR_COMPRESSION,
    ERROR_ENHANCE_YOUR_CALM,
    ERROR_FRAME_SIZE,
    ERROR_NO_ERROR,
    ERROR_PROTOCOL,
    ERROR_REFUSED_STREAM,
    FLAG_ACK,
    FLAG_END_HEADERS,
    FLAG_END_STREAM,
    FLAG_PADDED,
    GOAWAY,
    HEADERS,
    PING,
    PREFACE,
    PUSH_PROMISE,
    RST_STREAM,
    SETTING,
    SETTINGS,
    SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_CONCURRENT_STREAMS,
    SETTINGS_MAX_FRAME_SIZE,
    SETTINGS_MAX_HEADER_LIST_SIZE,
    U32,
    WINDOW_UPDATE,
    frame,
    settings_payload,
)
from restate_server.http2.hpack_decode import HeaderListTooLarge, HpackDecoder, HpackError
from restate_server.http2.hpack_encode import encode_header
from restate_server.http_messages import (
    INTERNAL_ERROR,
    ConnectionObserver,
    Deferred,
    Handler,
    HttpLimits,
    Request,
    Response,
    TimedConnection,
    encode_raw_target,
    task_response,
    too_large_body,
)

log = logging.getLogger(__name__)

MAX_CONCURRENT_STREAMS = 100
STREAM_WINDOW = 1024 * 1024  # what each request body may send before we return window
CONNECTION_WINDOW = 16 * 1024 * 1024
# headers HTTP/2 forbids in a response (RFC 9113 §8.2.2)
_CONNECTION_HEADERS = frozenset(("connection", "keep-alive", "transfer-encoding", "upgrade"))


class _Stream:
    """One request on the connection and the state of its answer."""

    __slots__ = (
        "body",
        "body_size",
        "deferred",
        "end_pending",
        "expected_size",
        "headers",
        "last_read",
        "outbound",
        "remote_closed",
        "responded",
        "send_window",
        "stream_id",
        "unacked",
    )

    def __init__(self, stream_id: int, send_window: int, now: float) -> None:
        self.stream_id = stream_id
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.body_size = 0
        self.expected_size: int | None = None  # the content-length, if it came with one
        self.remote_closed = False
        self.responded = False  # a response head was written
        self.deferred: Deferred | None = None
        self.send_window = send_window
        self.outbound = bytearray()  # response body held back by flow control
        self.end_pending = False
        self.unacked = 0  # received bytes not yet returned with WINDOW_UPDATE
        self.last_read = now


class H2ServerConnection(FramedConnection):
    def __init__(
        self,
        handler: Handler,
        limits: HttpLimits,
        observer: ConnectionObserver | None,
        connections: set[TimedConnection] | None,
    ) -> None:
        super().__init__()
        self.max_frame_size = DEFAULT_MAX_FRAME  # what we announce
        self.max_header_block = limits.max_head_bytes
        self._handler = handler
        self._limits = limits
        self._observer = observer
        self._connections = connections
        self._in = bytearray()
        self._preface_read = False
        self._decoder = HpackDecoder(max_header_list_size=limits.max_head_bytes)
        self._decoded_blocks: dict[bytes, list[tuple[bytes, bytes]]] = {}
        self._streams: dict[int, _Stream] = {}
        self._last_stream_id = 0
        self._continuation_since = 0.0
        self._peer_initial_window = DEFAULT_WINDOW
        self._peer_max_frame = DEFAULT_MAX_FRAME
        self._send_window = DEFAULT_WINDOW
        self._conn_unacked = 0
        self._blocked: dict[int, _Stream] = {}
        self._going_away = False  # GOAWAY sent or received: no new streams
        self._last_activity = time.monotonic()
        self._drop_status = "success"

    def start(self, transport: asyncio.Transport, data: bytes) -> None:
        """Take over ``transport`` from the HTTP/1.1 protocol, which read ``data``."""
        self._transport = transport
        if self._connections is not None:
            self._connections.add(self)
        settings = settings_payload(
            (
                (SETTINGS_MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS),
                (SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW),
                (SETTINGS_MAX_FRAME_SIZE, DEFAULT_MAX_FRAME),
                (SETTINGS_MAX_HEADER_LIST_SIZE, self._limits.max_head_bytes),
            )
        )
        self._out += frame(SETTINGS, 0, 0, settings)
        self._out += frame(WINDOW_UPDATE, 0, 0, U32.pack(CONNECTION_WINDOW - DEFAULT_WINDOW))
        self.data_received(data)
        self._write_now()

    # ---- asyncio.Protocol

    def connection_lost(self, exc: BaseException | None) -> None:
        self._transport = None
        if self._connections is not None:
            self._connections.discard(self)
        if self._observer is not None:
            self._observer.connection_dropped("io" if exc is not None else self._drop_status)
        streams, self._streams = self._streams, {}
        self._blocked.clear()
        for stream in streams.values():
            if stream.deferred is not None:
                stream.deferred.abandon()

    def data_received(self, data: bytes) -> None:
        if self._transport is None:
            return
        self._last_activity = time.monotonic()
        buffer = self._in
        buffer += data
        pos = 0
        if not self._preface_read:
            if len(buffer) < len(PREFACE):
                return
            if not buffer.startswith(PREFACE):
                self._fail(ERROR_PROTOCOL, "invalid connection preface")
                return
            self._preface_read = True
            pos = len(PREFACE)
        try:
            pos = self._read_frames(buffer, pos)
        except ProtocolViolation as exc:
            self._fail(exc.code, str(exc))
            return
        if self._transport is None:
            return
        del buffer[:pos]
        if self._out:
            self._write_now()

    # ---- incoming frames

    def _on_frame(self, frame_type: int, flags: int, stream_id: int, payload: bytes) -> None:
        if frame_type == DATA:
            self._on_data(flags, stream_id, payload)
        elif frame_type == HEADERS:
            self._on_headers(flags, stream_id, payload)
        elif frame_type == CONTINUATION:
            self._on_continuation(flags, stream_id, payload)
        elif frame_type == WINDOW_UPDATE:
            self._on_window_update(stream_id, payload)
        elif frame_type == SETTINGS:
            if not flags & FLAG_ACK:
                self._on_settings(payload)
        elif frame_type == RST_STREAM:
            stream = self._forget(stream_id)
            if stream is not None and stream.deferred is not None:
                stream.deferred.abandon()
        elif frame_type == PING:
            if not flags & FLAG_ACK:
                self._out += frame(PING, FLAG_ACK, 0, payload[:8])
        elif frame_type == GOAWAY:
            self._going_away = True
            self._close_when_done()
        elif frame_type == PUSH_PROMISE:
            raise ProtocolViolation(ERROR_PROTOCOL, "a client must not push")
        # PRIORITY and unknown frame types are ignored

    def _on_headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        super()._on_headers(flags, stream_id, payload)
        if self._continuation is not None:
            self._continuation_since = self._last_activity

    def _header_block_too_large(self, stream_id: int) -> None:
        # refused before more of it is buffered; the decoder never saw it, so the
        # connection's HPACK state is lost: answer this stream, accept no new ones
        self._refuse_block(stream_id)

    def _headers_complete(self, stream_id: int, flags: int, block: bytes) -> None:
        if stream_id % 2 == 0:
            raise ProtocolViolation(ERROR_PROTOCOL, "a client stream id must be odd")
        stream = self._streams.get(stream_id)
        if stream is not None:  # trailers: decoded for the HPACK state, then ignored
            self._decode(stream_id, block)
            if flags & FLAG_END_STREAM:
                self._request_complete(stream)
            return
        if stream_id <= self._last_stream_id:
            raise ProtocolViolation(ERROR_PROTOCOL, "stream id reused or out of order")
        self._last_stream_id = stream_id
        if len(block) > self._limits.max_head_bytes:
            self._refuse_block(stream_id)
            return
        headers = self._decode(stream_id, block)
        if headers is None:
            return
        if self._going_away:
            return
        if len(self._streams) >= MAX_CONCURRENT_STREAMS:
            self._reset(stream_id, ERROR_REFUSED_STREAM)
            return
        stream = _Stream(stream_id, self._peer_initial_window, self._last_activity)
        self._streams[stream_id] = stream
        stream.headers = headers
        limits = self._limits
        if len(headers) > limits.max_headers + 4:  # the pseudo-headers do not count
            self._respond(stream, _status(431))
            return
        for name, value in headers:
            if name == b"content-length":
                if not value.isdigit():
                    self._malformed(stream)
                    return
                stream.expected_size = int(value)
                if stream.expected_size > limits.max_body_bytes:
                    self._respond(stream, too_large_body())
                    return
                break
        if flags & FLAG_END_STREAM:
            self._request_complete(stream)

    def _decode(self, stream_id: int, block: bytes) -> list[tuple[bytes, bytes]] | None:
        cache = self._decoded_blocks
        headers = cache.get(block)
        if headers is not None:
            return headers
        try:
            headers, changed = self._decoder.decode(block)
        except HeaderListTooLarge:
            self._refuse_block(stream_id)
            return None
        except HpackError as exc:
            raise ProtocolViolation(ERROR_COMPRESSION, f"bad header block: {exc}") from exc
        # A client repeating a request sends the same bytes, and while the dynamic table
        # does not change they mean the same headers; a block that changes it voids that.
        if changed:
            cache.clear()
        elif len(block) <= 512:
            if len(cache) >= 64:
                cache.clear()
            cache[block] = headers
        return headers

    def _refuse_block(self, stream_id: int) -> None:
        """Answer 431 to a header block too large to keep, then accept no new streams."""
        self._last_stream_id = max(self._last_stream_id, stream_id)
        stream = self._streams.get(stream_id)
        if stream is None:
            stream = _Stream(stream_id, self._peer_initial_window, self._last_activity)
            self._streams[stream_id] = stream
        self._respond(stream, _status(431))
        self._go_away(ERROR_ENHANCE_YOUR_CALM)

    def _on_data(self, flags: int, stream_id: int, payload: bytes) -> None:
        flow_length = len(payload)
        # the connection window is returned for every DATA frame, wanted or not
        self._conn_unacked += flow_length
        if self._conn_unacked >= CONNECTION_WINDOW // 4:
            self._out += frame(WINDOW_UPDATE, 0, 0, U32.pack(self._conn_unacked))
            self._conn_unacked = 0
        stream = self._streams.get(stream_id)
        if stream is None or stream.remote_closed:
            if stream_id > self._last_stream_id:
                raise ProtocolViolation(ERROR_PROTOCOL, "DATA on an idle stream")
            return  # reset or answered early: ignored
        if flags & FLAG_PADDED:
            pad = payload[0] if payload else 0
            payload = payload[1 : len(payload) - pad]
        stream.last_read = self._last_activity
        if stream.responded:  # refused while the body was still coming
            if flags & FLAG_END_STREAM:
                stream.remote_closed = True
                self._forget_if_done(stream)
            return
        stream.body_size += len(payload)
        expected = stream.expected_size
        if expected is not None and stream.body_size > expected:
            self._malformed(stream)
            return
        if stream.body_size > self._limits.max_body_bytes:
            stream.body = []
            self._respond(stream, too_large_body())
            return
        if payload:
            stream.body.append(payload)
        if flags & FLAG_END_STREAM:
            self._request_complete(stream)
            return
        stream.unacked += flow_length
        if stream.unacked >= STREAM_WINDOW // 4:
            self._out += frame(WINDOW_UPDATE, 0, stream_id, U32.pack(stream.unacked))
            stream.unacked = 0

    def _on_window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            raise ProtocolViolation(ERROR_FRAME_SIZE, "WINDOW_UPDATE of the wrong size")
        increment = U32.unpack(payload)[0] & 0x7FFFFFFF
        if stream_id == 0:
            self._send_window += increment
            for stream in list(self._blocked.values()):
                self._send_pending(stream)
            return
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.send_window += increment
            if stream_id in self._blocked:
                self._send_pending(stream)

    def _on_settings(self, payload: bytes) -> None:
        if len(payload) % 6:
            raise ProtocolViolation(ERROR_FRAME_SIZE, "SETTINGS of the wrong size")
        for offset in range(0, len(payload), 6):
            key, value = SETTING.unpack_from(payload, offset)
            if key == SETTINGS_INITIAL_WINDOW_SIZE:
                delta = value - self._peer_initial_window
                self._peer_initial_window = value
                for stream in self._streams.values():
                    stream.send_window += delta
            elif key == SETTINGS_MAX_FRAME_SIZE:
                self._peer_max_frame = max(DEFAULT_MAX_FRAME, min(value, 2**24 - 1))
        self._out += frame(SETTINGS, FLAG_ACK, 0)
        for stream in list(self._blocked.values()):
            self._send_pending(stream)

    # ---- requests and answers

    def _request_complete(self, stream: _Stream) -> None:
        stream.remote_closed = True
        if stream.responded:
            self._forget_if_done(stream)
            return
        if stream.expected_size is not None and stream.body_size != stream.expected_size:
            self._malformed(stream)
            return
        request = self._request(stream)
        if request is None:
            self._malformed(stream)
            return
        head = request.method == "HEAD"
        try:
            result = self._handler(request)
        except Exception:
            log.exception("ingress handler failed")
            self._respond(stream, INTERNAL_ERROR)
            return
        if isinstance(result, Deferred):
            if result.response is None:
                stream.deferred = result
                result.then(partial(self._answered, stream, head=head))
                return
            result = result.response
        if isinstance(result, Response):
            self._respond(stream, result, head)
            return
        task = asyncio.ensure_future(result)
        task.add_done_callback(partial(self._task_done, stream, head=head))

    def _request(self, stream: _Stream) -> Request | None:
        method = path = authority = None
        headers: list[tuple[bytes, bytes]] = []
        has_host = False
        for name, value in stream.headers:
            if name[:1] == b":":
                if name == b":method":
                    method = value
                elif name == b":path":
                    path = value
                elif name == b":authority":
                    authority = value
            else:
                headers.append((name, value))
                has_host = has_host or name == b"host"
        if not method or not path:
            return None
        if authority is not None and not has_host:
            headers.insert(0, (b"host", authority))
        if not path.isascii():  # a raw UTF-8 path, accepted as on HTTP/1.1
            path = encode_raw_target(path)
        stream.headers = []
        body = b"".join(stream.body)
        stream.body = []
        return Request(method.decode("latin-1"), path.decode("latin-1"), headers, body)

    def _task_done(self, stream: _Stream, task: asyncio.Future[Response], head: bool) -> None:
        self._answered(stream, task_response(task), head)

    def _answered(self, stream: _Stream, response: Response, head: bool = False) -> None:
        stream.deferred = None
        if self._streams.get(stream.stream_id) is stream:
            self._respond(stream, response, head)
            self._schedule_write()

    def _respond(self, stream: _Stream, response: Response, head: bool = False) -> None:
        if self._transport is None or stream.responded:
            return
        stream.responded = True
        body = b"" if head else response.body
        field = _encoded_field
        parts = [_status_field(response.status)]
        for name, value in response.headers.items():
            parts.append(field(name, value))
        parts.append(_length_field(len(response.body)))
        stream_id = stream.stream_id
        out = self._out
        out += frame(
            HEADERS, FLAG_END_HEADERS | (0 if body else FLAG_END_STREAM), stream_id, b"".join(parts)
        )
        if not body:
            self._local_ended(stream)
            return
        size = len(body)
        if size <= min(stream.send_window, self._send_window, self._peer_max_frame):
            out += frame(DATA, FLAG_END_STREAM, stream_id, body)  # most answers: one frame
            stream.send_window -= size
            self._send_window -= size
            self._local_ended(stream)
            return
        stream.outbound += body
        stream.end_pending = True
        self._send_pending(stream)

    def _send_pending(self, stream: _Stream) -> None:
        outbound = stream.outbound
        out = self._out
        stream_id = stream.stream_id
        while outbound:
            window = min(stream.send_window, self._send_window, self._peer_max_frame)
            if window <= 0:
                self._blocked[stream_id] = stream
                return
            size = min(window, len(outbound))
            last = size == len(outbound)
            out += frame(DATA, FLAG_END_STREAM if last else 0, stream_id, bytes(outbound[:size]))
            del outbound[:size]
            stream.send_window -= size
            self._send_window -= size
        self._blocked.pop(stream_id, None)
        self._local_ended(stream)

    def _local_ended(self, stream: _Stream) -> None:
        self._last_activity = time.monotonic()  # an answer is out: idle from now
        stream.end_pending = False
        if not stream.remote_closed:
            # answered before the request ended (413, 431): the rest is not wanted
            self._out += frame(RST_STREAM, 0, stream.stream_id, U32.pack(ERROR_NO_ERROR))
            stream.remote_closed = True
        self._streams.pop(stream.stream_id, None)
        self._blocked.pop(stream.stream_id, None)
        self._close_when_done()

    def _forget_if_done(self, stream: _Stream) -> None:
        if stream.remote_closed and stream.responded and not stream.end_pending:
            self._streams.pop(stream.stream_id, None)
            self._close_when_done()

    def _forget(self, stream_id: int) -> _Stream | None:
        self._blocked.pop(stream_id, None)
        stream = self._streams.pop(stream_id, None)
        self._close_when_done()
        return stream

    def _malformed(self, stream: _Stream) -> None:
        """A request that breaks HTTP/2's message rules (RFC 9113 §8.1.1): the stream is
        reset with PROTOCOL_ERROR, as the real server does."""
        self._reset(stream.stream_id, ERROR_PROTOCOL)
        self._streams.pop(stream.stream_id, None)
        self._blocked.pop(stream.stream_id, None)
        self._close_when_done()

    def _reset(self, stream_id: int, code: int) -> None:
        self._out += frame(RST_STREAM, 0, stream_id, U32.pack(code))

    # ---- timeouts (the HTTP server's sweep calls this about once a second)

    def check_timeouts(self, now: float) -> None:
        if self._transport is None:
            return
        limits = self._limits
        if (
            self._continuation is not None
            and now - self._continuation_since > limits.header_timeout_s
        ):
            self._fail(ERROR_CANCEL, "header block not finished in time", status="timeout")
            return
        for stream in list(self._streams.values()):
            if (
                not stream.remote_closed
                and not stream.responded
                and now - stream.last_read > limits.body_timeout_s
            ):
                self._respond(stream, _status(408))
        if not self._streams and now - self._last_activity > limits.idle_timeout_s:
            self._drop_status = "idle"
            self._go_away(ERROR_NO_ERROR)
        self._write_now()

    # ---- writing and closing

    def _go_away(self, code: int) -> None:
        if not self._going_away:
            self._going_away = True
            self._out += frame(GOAWAY, 0, 0, U32.pack(self._last_stream_id) + U32.pack(code))
        self._close_when_done()

    def _close_when_done(self) -> None:
        if self._going_away and not self._streams and self._transport is not None:
            self._write_now()
            self._transport.close()
            self._transport = None

    def _fail(self, code: int, message: str, status: str = "parse") -> None:
        self._drop_status = status
        self._out += frame(
            GOAWAY, 0, 0, U32.pack(self._last_stream_id) + U32.pack(code) + message.encode()[:200]
        )
        self._write_now()
        if self._transport is not None:
            self._transport.close()
            self._transport = None


# encoded response header fields: the same few (status, content type, CORS, small
# lengths) on nearly every answer; unique ones (invocation ids) pass through and are
# dropped when the cache is reset
_fields: dict[tuple[str, str], bytes] = {}


def _encoded_field(name: str, value: str) -> bytes:
    """One response header, HPACK-encoded; nothing for those HTTP/2 forbids and for a
    handler's own content-length (``_respond`` writes the real one last)."""
    key = (name, value)
    encoded = _fields.get(key)
    if encoded is None:
        if len(_fields) >= 1024:
            _fields.clear()
        lowered = name.lower()
        if lowered in _CONNECTION_HEADERS or lowered == "content-length":
            encoded = b""
        else:
            encoded = encode_header(lowered, value)
        _fields[key] = encoded
    return encoded


@functools.lru_cache(maxsize=64)
def _status_field(status: int) -> bytes:
    return encode_header(":status", str(status))


@functools.lru_cache(maxsize=1024)
def _length_field(size: int) -> bytes:
    return encode_header("content-length", str(size))


def _status(status: int) -> Response:
    return Response(status, b"")
