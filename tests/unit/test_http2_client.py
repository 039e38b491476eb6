"""Our HTTP/2 client against scripted peer frames (fake transport, no sockets):
streams the peer never processed fail as *refused*, so the invoker may resend them."""

from __future__ import annotations

import asyncio
import struct

import pytest

from restate_server.http2.connection import H2ClientConnection
from restate_server.http2.errors import H2ConnectionError, H2StreamRefused, H2StreamReset

GOAWAY, RST_STREAM, SETTINGS = 7, 3, 4


class _Transport:
    def __init__(self) -> None:
        self.written = bytearray()

    def write(self, data: bytes) -> None:
        self.written += data

    def writelines(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.written += chunk

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


def _frame(frame_type: int, stream_id: int, payload: bytes, flags: int = 0) -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([frame_type, flags])
        + struct.pack(">I", stream_id)
        + payload
    )


async def _connection_with_streams(count: int) -> tuple[H2ClientConnection, list]:
    conn = H2ClientConnection("127.0.0.1:1", "http")
    conn.connection_made(_Transport())  # type: ignore[arg-type]
    conn.data_received(_frame(SETTINGS, 0, b""))  # the server's preface
    streams = [conn.open_stream("POST", f"/invoke/S/h{i}", []) for i in range(count)]
    return conn, streams


async def test_goaway_refuses_the_streams_above_the_last_processed_one() -> None:
    conn, streams = await _connection_with_streams(3)  # stream ids 1, 3, 5
    conn.data_received(_frame(GOAWAY, 0, struct.pack(">II", 1, 0)))
    assert not conn.accepting
    for stream in streams[1:]:
        with pytest.raises(H2StreamRefused):
            await asyncio.wait_for(stream.response(), 1)
    pending = asyncio.ensure_future(streams[0].response())
    await asyncio.sleep(0.01)
    assert not pending.done(), "stream 1 was processed: it goes on"
    pending.cancel()


async def test_refused_stream_reset_is_refused_and_other_resets_are_not() -> None:
    conn, streams = await _connection_with_streams(2)
    conn.data_received(_frame(RST_STREAM, 1, struct.pack(">I", 0x7)))
    conn.data_received(_frame(RST_STREAM, 3, struct.pack(">I", 0x2)))
    with pytest.raises(H2StreamRefused):
        await asyncio.wait_for(streams[0].response(), 1)
    with pytest.raises(H2StreamReset) as reset:
        await asyncio.wait_for(streams[1].response(), 1)
    assert reset.value.error_code == 0x2


async def test_an_http11_answer_to_the_preface_fails_the_streams_clearly() -> None:
    conn = H2ClientConnection("127.0.0.1:1", "http")
    conn.connection_made(_Transport())  # type: ignore[arg-type]
    stream = conn.open_stream("GET", "/discover", [])
    conn.data_received(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
    assert not conn.accepting
    with pytest.raises(H2ConnectionError, match=r"HTTP/1\.1 only"):
        await asyncio.wait_for(stream.response(), 1)


async def test_a_frame_larger_than_announced_ends_the_connection_unbuffered() -> None:
    conn, streams = await _connection_with_streams(1)
    # the header of a 1 MiB DATA frame: refused from its 9 bytes, not after 1 MiB
    conn.data_received(struct.pack(">I", 1 << 20)[1:] + bytes([0, 0]) + struct.pack(">I", 1))
    with pytest.raises(H2ConnectionError, match="frame of 1048576 bytes"):
        await asyncio.wait_for(streams[0].response(), 1)
    assert not conn.accepting
