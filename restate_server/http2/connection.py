"""One HTTP/2 cleartext client connection (prior knowledge) on an asyncio Protocol.

The ``h2`` state machine does the framing; this class owns the socket, routes
events to streams, keeps flow control moving in both directions, and writes
once per event-loop turn rather than once per frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from restate_server.http2.errors import H2ConnectionError, H2StreamReset
from restate_server.http2.stream import H2Stream, Headers

log = logging.getLogger(__name__)

INITIAL_WINDOW_SIZE = 2 * 1024 * 1024
MAX_FRAME_SIZE = 16 * 1024
CONNECTION_WINDOW = 16 * 1024 * 1024
PING_INTERVAL_S = 40.0
PING_TIMEOUT_S = 20.0


class H2ClientConnection(asyncio.Protocol):
    def __init__(self, authority: str, scheme: str = "http") -> None:
        self.authority = authority
        self.scheme = scheme
        config = h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_inbound_headers=False
        )
        self._h2 = h2.connection.H2Connection(config=config)
        self._transport: asyncio.Transport | None = None
        self._streams: dict[int, H2Stream] = {}
        self._blocked: set[H2Stream] = set()  # streams waiting for send window
        self._flush_scheduled = False
        self._closed_error: BaseException | None = None
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ping_handle: asyncio.TimerHandle | None = None
        self._ping_deadline: asyncio.TimerHandle | None = None
        self.accepting = True  # false after GOAWAY or failure: no new streams

    # ---- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        h2c = self._h2
        h2c.initiate_connection()
        h2c.update_settings(
            {
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: INITIAL_WINDOW_SIZE,
                h2.settings.SettingCodes.MAX_FRAME_SIZE: MAX_FRAME_SIZE,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            }
        )
        h2c.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self._write_now()
        self._arm_ping()
        if not self._ready.done():
            self._ready.set_result(None)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._fail_all(H2ConnectionError(f"connection to {self.authority} lost: {exc or 'closed'}"))

    def data_received(self, data: bytes) -> None:
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            self._fail_all(H2ConnectionError(f"HTTP/2 protocol error from {self.authority}: {exc}"))
            self._write_now()
            if self._transport is not None:
                self._transport.close()
            return
        for event in events:
            self._handle(event)
        self._write_now()

    # ---- events

    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            stream = self._streams.get(event.stream_id)
            if event.flow_controlled_length:
                # Consumed at once: the SDK's messages are small and we buffer them.
                self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if stream is not None and event.data:
                stream.on_data(event.data)
            if event.stream_ended is not None and stream is not None:
                self._remote_ended(stream)
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                status = 0
                headers: Headers = []
                for name, value in event.headers:
                    if name == ":status":
                        status = int(value)
                    elif not name.startswith(":"):
                        headers.append((name, value))
                stream.on_response(status, headers)
            if event.stream_ended is not None and stream is not None:
                self._remote_ended(stream)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                self._remote_ended(stream)
        elif isinstance(event, h2.events.StreamReset):
            stream = self._streams.pop(event.stream_id, None)
            if stream is not None:
                self._blocked.discard(stream)
                stream.fail(
                    H2StreamReset(
                        f"stream reset by {self.authority} (error code {event.error_code})",
                        int(event.error_code),
                    )
                )
        elif isinstance(event, h2.events.WindowUpdated):
            for stream in list(self._blocked):
                self.flush_stream(stream, write=False)
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            if h2.settings.SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                for stream in list(self._blocked):
                    self.flush_stream(stream, write=False)
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.accepting = False
            last = event.last_stream_id if event.last_stream_id is not None else 0
            error = H2ConnectionError(
                f"{self.authority} closed the connection (GOAWAY {event.error_code})"
            )
            for stream_id, stream in list(self._streams.items()):
                if stream_id > last:
                    self._streams.pop(stream_id, None)
                    stream.fail(error)
        elif isinstance(event, h2.events.PingAckReceived):
            if self._ping_deadline is not None:
                self._ping_deadline.cancel()
                self._ping_deadline = None
        elif isinstance(event, h2.events.TrailersReceived):
            stream = self._streams.get(event.stream_id)
            if event.stream_ended is not None and stream is not None:
                self._remote_ended(stream)

    def _remote_ended(self, stream: H2Stream) -> None:
        stream.on_end()
        if stream.local_closed:
            self._forget(stream)

    def _forget(self, stream: H2Stream) -> None:
        self._streams.pop(stream.stream_id, None)
        self._blocked.discard(stream)

    # ---- streams

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    @property
    def max_streams(self) -> int:
        return self._h2.remote_settings.max_concurrent_streams

    def has_capacity(self) -> bool:
        return (
            self.accepting and self._closed_error is None and self.open_streams < self.max_streams
        )

    async def wait_ready(self) -> None:
        await self._ready

    def open_stream(
        self, method: str, path: str, headers: Headers, end_stream: bool = False
    ) -> H2Stream:
        if self._closed_error is not None:
            raise self._closed_error
        h2c = self._h2
        stream_id = h2c.get_next_available_stream_id()
        stream = H2Stream(self, stream_id)
        request = [
            (":method", method),
            (":scheme", self.scheme),
            (":authority", self.authority),
            (":path", path),
            *headers,
        ]
        h2c.send_headers(stream_id, request, end_stream=end_stream)
        self._streams[stream_id] = stream
        if end_stream:
            stream.local_closed = True
        self._schedule_write()
        return stream

    def flush_stream(self, stream: H2Stream, write: bool = True) -> None:
        """Send as much of the stream's pending body as the windows allow."""
        h2c = self._h2
        stream_id = stream.stream_id
        if stream_id not in self._streams or stream.local_closed:
            return
        outbound = stream.outbound
        try:
            while outbound:
                window = min(h2c.local_flow_control_window(stream_id), h2c.max_outbound_frame_size)
                if window <= 0:
                    self._blocked.add(stream)
                    break
                chunk = bytes(outbound[:window])
                del outbound[:window]
                h2c.send_data(stream_id, chunk)
            if not outbound:
                self._blocked.discard(stream)
                if stream.end_pending:
                    h2c.end_stream(stream_id)
                    stream.end_pending = False
                    stream.local_closed = True
                    if stream.remote_closed:
                        self._forget(stream)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError) as exc:
            self._forget(stream)
            stream.fail(H2StreamReset(f"cannot send on stream {stream_id}: {exc}"))
        if write:
            self._schedule_write()

    def reset_stream(self, stream: H2Stream, error_code: int) -> None:
        if stream.stream_id in self._streams:
            self._forget(stream)
            with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                self._h2.reset_stream(stream.stream_id, error_code)
            self._schedule_write()

    # ---- writing

    def _schedule_write(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._write_now)

    def _write_now(self) -> None:
        self._flush_scheduled = False
        data = self._h2.data_to_send()
        if data and self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    # ---- keep-alive

    def _arm_ping(self) -> None:
        loop = asyncio.get_running_loop()
        self._ping_handle = loop.call_later(PING_INTERVAL_S, self._send_ping)

    def _send_ping(self) -> None:
        if self._closed_error is not None:
            return
        try:
            self._h2.ping(os.urandom(8))
        except h2.exceptions.ProtocolError:
            return
        self._write_now()
        loop = asyncio.get_running_loop()
        self._ping_deadline = loop.call_later(PING_TIMEOUT_S, self._ping_timed_out)
        self._arm_ping()

    def _ping_timed_out(self) -> None:
        self._fail_all(H2ConnectionError(f"{self.authority} did not answer a PING"))
        if self._transport is not None:
            self._transport.abort()

    # ---- closing

    def _fail_all(self, error: BaseException) -> None:
        if self._closed_error is None:
            self._closed_error = error
        self.accepting = False
        for handle in (self._ping_handle, self._ping_deadline):
            if handle is not None:
                handle.cancel()
        streams, self._streams = self._streams, {}
        self._blocked.clear()
        for stream in streams.values():
            stream.fail(error)
        if not self._ready.done():
            self._ready.set_exception(error)
            self._ready.exception()

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            try:
                self._h2.close_connection()
                self._write_now()
            except h2.exceptions.ProtocolError:
                pass
            self._transport.close()
        self._fail_all(H2ConnectionError("connection closed by the client"))
