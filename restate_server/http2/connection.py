"""One HTTP/2 client connection (prior knowledge) on an asyncio Protocol.

A lean client for one job: many short, full-duplex request streams toward SDK
endpoints. It frames by hand (RFC 9113), encodes request headers with a
table-less HPACK encoder, decodes response headers with ``hpack``, keeps flow
control moving in both directions, and writes once per event-loop turn.
"""

from __future__ import annotations

import asyncio
import logging
import os

import hpack

from restate_server.http2.errors import H2ConnectionError, H2StreamRefused, H2StreamReset
from restate_server.http2.framed import FramedConnection, ProtocolViolation
from restate_server.http2.frames import (
    CONTINUATION,
    DATA,
    DEFAULT_WINDOW,
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
    SETTINGS_ENABLE_PUSH,
    SETTINGS_HEADER_TABLE_SIZE,
    SETTINGS_INITIAL_WINDOW_SIZE,
    SETTINGS_MAX_CONCURRENT_STREAMS,
    SETTINGS_MAX_FRAME_SIZE,
    U32,
    WINDOW_UPDATE,
    frame,
)
from restate_server.http2.hpack_encode import encode_header
from restate_server.http2.stream import H2Stream, Headers

log = logging.getLogger(__name__)

# what we announce, as the real server does
INITIAL_WINDOW_SIZE = 2 * 1024 * 1024
MAX_FRAME_SIZE = 16 * 1024
CONNECTION_WINDOW = 16 * 1024 * 1024
PING_INTERVAL_S = 40.0
PING_TIMEOUT_S = 20.0

_U32 = U32
_SETTING = SETTING


class _StreamState:
    """Per-stream flow-control bookkeeping kept next to the public stream object."""

    __slots__ = ("got_headers", "heard", "send_window", "unacked")

    def __init__(self, send_window: int, heard: int) -> None:
        self.send_window = send_window
        # the connection's count of reads when this stream last heard from the peer (or
        # opened): none since means the whole connection has been silent as long
        self.heard = heard
        self.unacked = 0  # received bytes not yet returned with WINDOW_UPDATE
        self.got_headers = False


class H2ClientConnection(FramedConnection):
    # a frame larger than we announced ends the connection before it is buffered whole
    max_frame_size = MAX_FRAME_SIZE

    def __init__(self, authority: str, scheme: str = "http") -> None:
        super().__init__()
        self.authority = authority
        self.scheme = scheme
        self._in = bytearray()
        self._decoder = hpack.Decoder()
        self._decoded_blocks: dict[bytes, list[tuple[str, str]]] = {}
        self._streams: dict[int, H2Stream] = {}
        self._state: dict[int, _StreamState] = {}
        self._blocked: dict[int, H2Stream] = {}
        self._next_stream_id = 1
        self._peer_max_streams = 2**31
        self._peer_initial_window = DEFAULT_WINDOW
        self._peer_max_frame = 16_384
        self._send_window = DEFAULT_WINDOW  # connection-level
        self._conn_unacked = 0
        self._closed_error: BaseException | None = None
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ping_handle: asyncio.TimerHandle | None = None
        self._ping_deadline: asyncio.TimerHandle | None = None
        self.accepting = True  # false after GOAWAY or failure: no new streams
        self._peer_spoke = False  # the first bytes from the peer were checked
        self._heard = 0  # reads from the peer so far
        self._close_when_idle = False  # retired as possibly dead: close with its last stream

    # ---- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        settings = b"".join(
            _SETTING.pack(k, v)
            for k, v in (
                (SETTINGS_ENABLE_PUSH, 0),
                (SETTINGS_INITIAL_WINDOW_SIZE, INITIAL_WINDOW_SIZE),
                (SETTINGS_MAX_FRAME_SIZE, MAX_FRAME_SIZE),
            )
        )
        self._out += PREFACE
        self._out += frame(SETTINGS, 0, 0, settings)
        self._out += frame(WINDOW_UPDATE, 0, 0, _U32.pack(CONNECTION_WINDOW - DEFAULT_WINDOW))
        self._write_now()
        self._arm_ping()
        if not self._ready.done():
            self._ready.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._fail_all(
            H2ConnectionError(f"connection to {self.authority} lost: {exc or 'closed by peer'}")
        )

    def data_received(self, data: bytes) -> None:
        self._heard += 1
        buffer = self._in
        buffer += data
        if not self._peer_spoke:
            if len(buffer) < 4:
                return
            self._peer_spoke = True
            # an HTTP/2 server's first frame is SETTINGS; an HTTP/1.1 server answers the
            # preface with a status line, which would otherwise read as a huge frame
            if buffer.startswith(b"HTTP/") or buffer[3] != SETTINGS:
                self._connection_error(
                    f"not an HTTP/2 server (HTTP/1.1 only?): it answered {bytes(buffer[:16])!r}"
                )
                return
        try:
            pos = self._read_frames(buffer, 0)
        except ProtocolViolation as exc:
            self._connection_error(str(exc))
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
            code = _U32.unpack(payload[:4])[0] if len(payload) >= 4 else 0
            stream = self._forget(stream_id)
            if stream is not None:
                message = f"stream reset by {self.authority} (error {code})"
                if code == ERROR_REFUSED_STREAM:
                    stream.fail(H2StreamRefused(message))
                else:
                    stream.fail(H2StreamReset(message, code))
        elif frame_type == PING:
            if flags & FLAG_ACK:
                if self._ping_deadline is not None:
                    self._ping_deadline.cancel()
                    self._ping_deadline = None
            else:
                self._out += frame(PING, FLAG_ACK, 0, payload)
        elif frame_type == GOAWAY:
            self._on_goaway(payload)
        elif frame_type == PUSH_PROMISE:
            raise ProtocolViolation(ERROR_PROTOCOL, "PUSH_PROMISE although push is disabled")
        # PRIORITY and unknown frame types are ignored

    def _on_data(self, flags: int, stream_id: int, payload: bytes) -> None:
        flow_length = len(payload)
        if flags & FLAG_PADDED:
            pad = payload[0] if payload else 0
            payload = payload[1 : len(payload) - pad]
        # Give the window back in batches: fewer frames, the peer never stalls.
        self._conn_unacked += flow_length
        if self._conn_unacked >= CONNECTION_WINDOW // 4:
            self._out += frame(WINDOW_UPDATE, 0, 0, _U32.pack(self._conn_unacked))
            self._conn_unacked = 0
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        state = self._state[stream_id]
        state.heard = self._heard
        if flags & FLAG_END_STREAM == 0:
            state.unacked += flow_length
            if state.unacked >= INITIAL_WINDOW_SIZE // 4:
                self._out += frame(WINDOW_UPDATE, 0, stream_id, _U32.pack(state.unacked))
                state.unacked = 0
        if payload:
            stream.on_data(payload)
        if flags & FLAG_END_STREAM:
            self._remote_ended(stream)

    def _headers_complete(self, stream_id: int, flags: int, block: bytes) -> None:
        decoded = self._decoded_blocks.get(block)
        if decoded is None:
            try:
                decoded = self._decoder.decode(block, raw=False)
            except hpack.HPACKError as exc:
                raise ProtocolViolation(ERROR_PROTOCOL, f"bad header block: {exc}") from exc
            # A block of only one-byte indexed fields leaves the decoder's table as it
            # was, so while the table does not change the same bytes mean the same
            # headers. Any other block may change the table: forget what we know.
            if 0xFF not in block and all(b & 0x80 for b in block):
                if len(self._decoded_blocks) > 256:
                    self._decoded_blocks.clear()
                self._decoded_blocks[block] = decoded
            else:
                self._decoded_blocks.clear()
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        state = self._state[stream_id]
        state.heard = self._heard
        if not state.got_headers:
            status = 0
            headers: Headers = []
            for name, value in decoded:
                if name == ":status":
                    status = int(value)
                elif name[0] != ":":
                    headers.append((name, value))
            if 100 <= status < 200:
                return  # informational; the real head follows
            state.got_headers = True
            stream.on_response(status, headers)
        # a second header block is trailers: nothing in it matters here
        if flags & FLAG_END_STREAM:
            self._remote_ended(stream)

    def _on_window_update(self, stream_id: int, payload: bytes) -> None:
        increment = _U32.unpack(payload[:4])[0] & 0x7FFFFFFF
        if stream_id == 0:
            self._send_window += increment
            for stream in list(self._blocked.values()):
                self._send_pending(stream)
            return
        state = self._state.get(stream_id)
        if state is not None:
            state.send_window += increment
            stream = self._blocked.get(stream_id)
            if stream is not None:
                self._send_pending(stream)

    def _on_settings(self, payload: bytes) -> None:
        for offset in range(0, len(payload) - len(payload) % 6, 6):
            key, value = _SETTING.unpack_from(payload, offset)
            if key == SETTINGS_MAX_CONCURRENT_STREAMS:
                self._peer_max_streams = value
            elif key == SETTINGS_INITIAL_WINDOW_SIZE:
                delta = value - self._peer_initial_window
                self._peer_initial_window = value
                for state in self._state.values():
                    state.send_window += delta
            elif key == SETTINGS_MAX_FRAME_SIZE:
                self._peer_max_frame = value
            elif key == SETTINGS_HEADER_TABLE_SIZE:
                pass  # our encoder never uses the dynamic table
        self._out += frame(SETTINGS, FLAG_ACK, 0)
        for stream in list(self._blocked.values()):
            self._send_pending(stream)

    def _on_goaway(self, payload: bytes) -> None:
        self.accepting = False
        last = _U32.unpack(payload[:4])[0] & 0x7FFFFFFF if len(payload) >= 4 else 0
        code = _U32.unpack(payload[4:8])[0] if len(payload) >= 8 else 0
        error = H2StreamRefused(f"{self.authority} closed the connection (GOAWAY {code})")
        for stream_id in [s for s in self._streams if s > last]:
            stream = self._forget(stream_id)
            if stream is not None:
                stream.fail(error)

    def _remote_ended(self, stream: H2Stream) -> None:
        stream.on_end()
        if stream.local_closed:
            self._forget(stream.stream_id)

    def _forget(self, stream_id: int) -> H2Stream | None:
        self._state.pop(stream_id, None)
        self._blocked.pop(stream_id, None)
        stream = self._streams.pop(stream_id, None)
        if self._close_when_idle and not self._streams:
            self._close_when_idle = False
            asyncio.get_running_loop().call_soon(self.close)
        return stream

    # ---- streams

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    @property
    def max_streams(self) -> int:
        return self._peer_max_streams

    def has_capacity(self) -> bool:
        return (
            self.accepting
            and self._closed_error is None
            and len(self._streams) < self._peer_max_streams
            and self._next_stream_id < 2**31 - 2
        )

    async def wait_ready(self) -> None:
        await self._ready

    def open_stream(
        self, method: str, path: str, headers: Headers, end_stream: bool = False
    ) -> H2Stream:
        if self._closed_error is not None:
            raise self._closed_error
        stream_id = self._next_stream_id
        self._next_stream_id += 2
        stream = H2Stream(self, stream_id)
        block = b"".join(
            (
                encode_header(":method", method),
                encode_header(":scheme", self.scheme),
                encode_header(":authority", self.authority),
                encode_header(":path", path),
                *(encode_header(name.lower(), value) for name, value in headers),
            )
        )
        self._streams[stream_id] = stream
        self._state[stream_id] = _StreamState(self._peer_initial_window, self._heard)
        flags = FLAG_END_STREAM if end_stream else 0
        max_frame = self._peer_max_frame
        if len(block) <= max_frame:
            self._out += frame(HEADERS, flags | FLAG_END_HEADERS, stream_id, block)
        else:
            self._out += frame(HEADERS, flags, stream_id, block[:max_frame])
            rest = block[max_frame:]
            while rest:
                chunk, rest = rest[:max_frame], rest[max_frame:]
                last = FLAG_END_HEADERS if not rest else 0
                self._out += frame(CONTINUATION, last, stream_id, chunk)
        if end_stream:
            stream.local_closed = True
        self._schedule_write()
        return stream

    def flush_stream(self, stream: H2Stream, write: bool = True) -> None:
        """Called by the stream when it has body bytes or its end to send."""
        if stream.stream_id not in self._streams or stream.local_closed:
            return
        self._send_pending(stream)
        if write:
            self._schedule_write()

    def _send_pending(self, stream: H2Stream) -> None:
        stream_id = stream.stream_id
        state = self._state.get(stream_id)
        if state is None:
            return
        outbound = stream.outbound
        out = self._out
        while outbound:
            window = min(state.send_window, self._send_window, self._peer_max_frame)
            if window <= 0:
                self._blocked[stream_id] = stream
                return
            size = min(window, len(outbound))
            last = size == len(outbound) and stream.end_pending
            out += frame(DATA, FLAG_END_STREAM if last else 0, stream_id, bytes(outbound[:size]))
            del outbound[:size]
            state.send_window -= size
            self._send_window -= size
            if last:
                self._local_ended(stream)
                return
        self._blocked.pop(stream_id, None)
        if stream.end_pending:
            out += frame(DATA, FLAG_END_STREAM, stream_id)
            self._local_ended(stream)

    def _local_ended(self, stream: H2Stream) -> None:
        stream.end_pending = False
        stream.local_closed = True
        self._blocked.pop(stream.stream_id, None)
        if stream.remote_closed:
            self._forget(stream.stream_id)

    def give_up(self, stream: H2Stream, error_code: int) -> None:
        """Reset ``stream``, whose caller stopped waiting for an answer (a timeout). If the
        connection heard nothing at all since the stream last did, the peer may be gone: a
        vanished peer leaves the connection open and silent until the keep-alive PING
        times out (up to a minute), and every new stream on it would wait as long. So: no
        new streams on it, and it closes once the streams still on it are done."""
        state = self._state.get(stream.stream_id)
        if state is not None and state.heard == self._heard:
            self.accepting = False
            self._close_when_idle = True
        self.reset_stream(stream, error_code)

    def reset_stream(self, stream: H2Stream, error_code: int) -> None:
        if self._forget(stream.stream_id) is not None:
            self._out += frame(RST_STREAM, 0, stream.stream_id, _U32.pack(error_code))
            self._schedule_write()

    # ---- keep-alive

    def _arm_ping(self) -> None:
        self._ping_handle = asyncio.get_running_loop().call_later(PING_INTERVAL_S, self._send_ping)

    def _send_ping(self) -> None:
        if self._closed_error is not None:
            return
        self._out += frame(PING, 0, 0, os.urandom(8))
        self._write_now()
        loop = asyncio.get_running_loop()
        self._ping_deadline = loop.call_later(PING_TIMEOUT_S, self._ping_timed_out)
        self._arm_ping()

    def _ping_timed_out(self) -> None:
        self._fail_all(H2ConnectionError(f"{self.authority} did not answer a PING"))
        if self._transport is not None:
            self._transport.abort()

    # ---- closing

    def _connection_error(self, message: str) -> None:
        self._out += frame(
            GOAWAY, 0, 0, _U32.pack(0) + _U32.pack(ERROR_PROTOCOL) + message.encode()[:200]
        )
        self._write_now()
        self._fail_all(H2ConnectionError(f"HTTP/2 protocol error from {self.authority}: {message}"))
        if self._transport is not None:
            self._transport.close()

    def _fail_all(self, error: BaseException) -> None:
        if self._closed_error is None:
            self._closed_error = error
        self.accepting = False
        for handle in (self._ping_handle, self._ping_deadline):
            if handle is not None:
                handle.cancel()
        streams, self._streams = self._streams, {}
        self._state.clear()
        self._blocked.clear()
        for stream in streams.values():
            stream.fail(error)
        if not self._ready.done():
            self._ready.set_exception(error)
            self._ready.exception()

    def close(self) -> None:
        transport = self._transport
        if transport is not None and not transport.is_closing():
            self._out += frame(GOAWAY, 0, 0, _U32.pack(0) + _U32.pack(ERROR_NO_ERROR))
            self._write_now()
            transport.close()
        self._fail_all(H2ConnectionError("connection closed by the client"))
