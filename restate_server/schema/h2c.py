"""A one-shot GET over HTTP/2 cleartext with prior knowledge, for discovery.

Discovery is rare, so it gets a connection of its own instead of needing the invoker's
pool: send the preface and one HEADERS frame with END_STREAM, read the answer, close.
An HTTP/1.1-only server answers the preface with text that does not parse as an h2
frame; that is reported the way the real server does (META0014).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions

from restate_server.schema.errors import TransportError

_HTTP11_ONLY = "server possibly supports only HTTP1.1, consider discovery with --use-http1.1."


async def h2c_get(
    url: str, headers: list[tuple[str, str]], *, connect_timeout: float = 10.0
) -> tuple[int, list[tuple[str, str]], bytes]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), connect_timeout)
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
    )
    try:
        conn.initiate_connection()
        stream_id = conn.get_next_available_stream_id()
        request_headers = [
            (":method", "GET"),
            (":scheme", "http"),
            (":authority", parts.netloc),
            (":path", path),
            *headers,
        ]
        conn.send_headers(stream_id, request_headers, end_stream=True)
        writer.write(conn.data_to_send())
        await writer.drain()
        return await _read_response(reader, writer, conn, stream_id)
    finally:
        writer.close()


async def _read_response(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    conn: h2.connection.H2Connection,
    stream_id: int,
) -> tuple[int, list[tuple[str, str]], bytes]:
    status: int | None = None
    response_headers: list[tuple[str, str]] = []
    body = bytearray()
    first = True
    while True:
        data = await reader.read(65536)
        if not data:
            raise TransportError("h2 pool connection error: connection closed before the response")
        if first:
            first = False
            # an h2 server starts with a SETTINGS frame (type 4 in the fourth byte); h2
            # itself would wait for the bytes of the huge "frame" ``HTTP/1.1 400 ...`` reads as
            if data.startswith(b"HTTP/") or (len(data) >= 4 and data[3] != 0x04):
                raise TransportError(_HTTP11_ONLY, code="META0014", retryable=False)
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError as exc:
            if status is None:
                raise TransportError(_HTTP11_ONLY, code="META0014", retryable=False) from exc
            raise TransportError(f"h2 pool connection error: {exc}") from exc
        for event in events:
            if isinstance(event, h2.events.ResponseReceived) and event.stream_id == stream_id:
                for name, value in event.headers:
                    key = name.decode() if isinstance(name, bytes) else name
                    text = value.decode() if isinstance(value, bytes) else value
                    if key == ":status":
                        status = int(text)
                    else:
                        response_headers.append((key, text))
            elif isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                body.extend(event.data)
                conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                if status is None:
                    raise TransportError("h2 pool connection error: stream ended without headers")
                conn.close_connection()
                writer.write(conn.data_to_send())
                return status, response_headers, bytes(body)
            elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
                raise TransportError(
                    f"h2 pool connection error: stream reset ({event.error_code!r})"
                )
            elif isinstance(event, h2.events.ConnectionTerminated):
                raise TransportError(
                    f"h2 pool connection error: connection terminated ({event.error_code!r})"
                )
        pending = conn.data_to_send()
        if pending:
            writer.write(pending)
            await writer.drain()
