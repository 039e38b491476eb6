"""A stream given up after a timeout retires its connection when the peer has been silent
since the stream opened (fake transport, no sockets).

Found by tests/reliability/test_endpoint_faults.py: an endpoint whose answers stop
arriving (a black hole) left the pooled connection open and "accepting", so every retry,
even after the endpoint was reachable again, waited on the dead connection until the
keep-alive PING gave up on it (up to a minute)."""

from __future__ import annotations

import asyncio
import struct

from restate_server.http2.connection import H2ClientConnection
from restate_server.invoker.attempt import Attempt
from restate_server.invoker.invocation_task import InvocationTask
from tests.unit.test_invoker_drain import _action, _invoker

DATA, HEADERS, SETTINGS, PING = 0, 1, 4, 6
FLAG_END_HEADERS, FLAG_ACK = 0x4, 0x1


class _Transport:
    def __init__(self) -> None:
        self.written = bytearray()
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written += data

    def writelines(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            self.written += chunk

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def _frame(frame_type: int, stream_id: int, payload: bytes = b"", flags: int = 0) -> bytes:
    head = struct.pack(">I", len(payload))[1:] + bytes([frame_type, flags])
    return head + struct.pack(">I", stream_id) + payload


def _connection() -> tuple[H2ClientConnection, _Transport]:
    conn = H2ClientConnection("127.0.0.1:1", "http")
    transport = _Transport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    conn.data_received(_frame(SETTINGS, 0))  # the server's preface, before any stream
    return conn, transport


async def test_a_silent_connection_is_retired_and_closed_with_its_last_stream() -> None:
    conn, transport = _connection()
    first = conn.open_stream("POST", "/invoke/S/a", [])
    second = conn.open_stream("POST", "/invoke/S/b", [])
    first.give_up()
    assert not conn.accepting, "the pool must not open the retry's stream on it"
    await asyncio.sleep(0)
    assert not transport.closed, "the other stream is still on it"
    second.reset()
    await asyncio.sleep(0)
    assert transport.closed
    assert first.closed  # a given-up stream fails as a reset one does
    assert bytes(transport.written[-17:]).startswith(b"\x00\x00\x08\x07"), "no GOAWAY"


async def test_silence_after_the_response_head_retires_it_too() -> None:
    conn, _ = _connection()
    stream = conn.open_stream("POST", "/invoke/S/a", [])
    conn.data_received(_frame(HEADERS, 1, b"\x88", FLAG_END_HEADERS))  # :status 200
    assert (await stream.response())[0] == 200
    stream.give_up()  # ... and then nothing, from anyone
    assert not conn.accepting


async def test_another_stream_hearing_keeps_the_connection() -> None:
    conn, transport = _connection()
    quiet = conn.open_stream("POST", "/invoke/S/a", [])
    conn.open_stream("POST", "/invoke/S/b", [])
    conn.data_received(_frame(HEADERS, 3, b"\x88", FLAG_END_HEADERS))
    conn.data_received(_frame(DATA, 3, b"x"))
    quiet.give_up()
    await asyncio.sleep(0)
    assert conn.accepting and not transport.closed


async def test_a_connection_that_answered_since_the_stream_opened_stays() -> None:
    conn, transport = _connection()
    stream = conn.open_stream("POST", "/invoke/S/a", [])
    conn.data_received(_frame(PING, 0, bytes(8), FLAG_ACK))  # the peer is alive
    stream.give_up()
    await asyncio.sleep(0)
    assert conn.accepting and not transport.closed


async def test_a_plain_reset_never_retires_the_connection() -> None:
    conn, transport = _connection()
    conn.open_stream("POST", "/invoke/S/a", []).reset()
    await asyncio.sleep(0)
    assert conn.accepting and not transport.closed


class _Stream:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def end(self) -> None:
        self.calls.append("end")

    def reset(self) -> None:
        self.calls.append("reset")

    def give_up(self) -> None:
        self.calls.append("give_up")


async def test_the_abort_timeout_gives_the_stream_up() -> None:
    invoker = _invoker()
    attempt = Attempt(InvocationTask(invoker, _action(1), invoker.processor_for(b"")), 0)
    stream = _Stream()
    attempt.stream = stream  # type: ignore[assignment]
    attempt.request_open = True
    attempt._arm_watchdog(10, 10, request_response=False)
    for _ in range(100):  # bounded: the two timeouts take 20 ms
        if "give_up" in stream.calls:
            break
        await asyncio.sleep(0.01)
    # inactivity closes the request (the SDK may suspend), then the abort timeout gives up
    assert stream.calls == ["end", "give_up"]
    attempt._disarm_watchdog()
