"""The server side of h2c on the ingress and admin ports (no sockets): hand-over from
HTTP/1.1 on the preface, requests on concurrent streams answered as each is ready, flow
control of answers, and the limits mapped onto HTTP/2 (413, 431, REFUSED_STREAM, GOAWAY
for broken framing, 408 and idle close from the sweep)."""

from __future__ import annotations

import hpack

from restate_server.http2 import frames as f
from restate_server.http2.server_connection import MAX_CONCURRENT_STREAMS, H2ServerConnection
from restate_server.http_server import HttpLimits, Response, _HttpProtocol
from tests.unit.http_fakes import SMALL_LIMITS as LIMITS
from tests.unit.http_fakes import FakeTransport, RecordingApp


class _Client:
    """Frames in, frames out: an HTTP/2 client talking to one server connection."""

    def __init__(self, limits: HttpLimits = LIMITS, *, settings: bytes = b"") -> None:
        self.app = RecordingApp()
        self.transport = FakeTransport()
        self.http1 = _HttpProtocol(self.app, limits=limits)
        self.http1.connection_made(self.transport)  # type: ignore[arg-type]
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self._read = 0
        self.send(f.PREFACE + f.frame(f.SETTINGS, 0, 0, settings))

    @property
    def server(self) -> H2ServerConnection:
        protocol = self.transport.protocol  # set by the hand-over
        assert isinstance(protocol, H2ServerConnection)
        return protocol

    def send(self, data: bytes) -> None:
        protocol = getattr(self.transport, "protocol", self.http1)
        protocol.data_received(data)

    def request(
        self,
        stream_id: int,
        path: str,
        body: bytes = b"",
        *,
        method: str = "POST",
        headers: list[tuple[str, str]] | None = None,
        end: bool = True,
    ) -> None:
        block = self.encoder.encode(
            [
                (":method", method),
                (":scheme", "http"),
                (":authority", "localhost"),
                (":path", path),
                *(headers or []),
            ]
        )
        flags = f.FLAG_END_HEADERS | (f.FLAG_END_STREAM if end and not body else 0)
        data = f.frame(f.HEADERS, flags, stream_id, block)
        if body:
            data += f.frame(f.DATA, f.FLAG_END_STREAM if end else 0, stream_id, body)
        self.send(data)

    def frames(self) -> list[tuple[int, int, int, bytes]]:
        """Frames the server wrote since the last call: (type, flags, stream, payload)."""
        out = b"".join(self.transport.chunks)
        data, self._read = out[self._read :], len(out)
        result = []
        while data:
            length = int.from_bytes(data[:3], "big")
            result.append(
                (
                    data[3],
                    data[4],
                    int.from_bytes(data[5:9], "big") & 0x7FFFFFFF,
                    data[9 : 9 + length],
                )
            )
            data = data[9 + length :]
        return result

    def responses(self) -> dict[int, tuple[int, dict[str, str], bytes]]:
        answers: dict[int, tuple[int, dict[str, str], bytes]] = {}
        for frame_type, _flags, stream_id, payload in self.frames():
            if frame_type == f.HEADERS:
                fields = dict(self.decoder.decode(payload))
                status = int(fields.pop(":status"))
                answers[stream_id] = (status, fields, b"")
            elif frame_type == f.DATA and stream_id in answers:
                status, fields, body = answers[stream_id]
                answers[stream_id] = (status, fields, body + payload)
        return answers


def _types(frames: list[tuple[int, int, int, bytes]]) -> list[int]:
    return [frame_type for frame_type, *_ in frames]


async def test_the_preface_hands_the_connection_over_and_requests_are_answered() -> None:
    client = _Client()
    first = client.frames()
    assert first[0][0] == f.SETTINGS  # the server's own settings come first
    client.request(1, "/echo", b"hello", headers=[("content-type", "text/plain")])
    status, headers, body = client.responses()[1]
    assert (status, body) == (200, b"ok:hello")
    assert headers["content-type"] == "text/plain" and headers["content-length"] == "8"
    request = client.app.requests[0]
    assert (request.method, request.raw_path) == ("POST", "/echo")
    assert request.headers["host"] == "localhost"  # from :authority
    assert request.headers["content-type"] == "text/plain"


async def test_a_preface_split_into_single_bytes_is_still_recognised() -> None:
    app = RecordingApp()
    transport = FakeTransport()
    http1 = _HttpProtocol(app, limits=LIMITS)
    http1.connection_made(transport)  # type: ignore[arg-type]
    data = f.PREFACE + f.frame(f.SETTINGS, 0, 0)
    for index in range(len(data)):
        getattr(transport, "protocol", http1).data_received(data[index : index + 1])
    assert isinstance(transport.protocol, H2ServerConnection)


async def test_http1_requests_starting_like_the_preface_stay_http1() -> None:
    app = RecordingApp()
    transport = FakeTransport()
    http1 = _HttpProtocol(app, limits=LIMITS)
    http1.connection_made(transport)  # type: ignore[arg-type]
    for byte in b"PUT /now HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n":
        http1.data_received(bytes((byte,)))
    assert not hasattr(transport, "protocol")
    assert transport.status_lines == [b"HTTP/1.1 200 OK"]


async def test_streams_are_answered_as_each_is_ready_not_in_order() -> None:
    client = _Client()
    client.frames()
    client.request(1, "/later/a", b"1")
    client.request(3, "/later/b", b"2")
    client.request(5, "/now", b"3")
    assert list(client.responses()) == [5]
    client.app.deferred[1].resolve(Response(200, b"b"))
    await _turn()
    assert client.responses()[3][2] == b"b"
    client.app.deferred[0].resolve(Response(201, b"a"))
    await _turn()
    assert client.responses()[1][:1] == (201,)


async def test_head_requests_get_no_body() -> None:
    client = _Client()
    client.frames()
    client.request(1, "/now", method="HEAD")
    frames = client.frames()
    assert _types(frames) == [f.HEADERS] and frames[0][1] & f.FLAG_END_STREAM


async def test_an_answer_larger_than_the_window_waits_for_window_updates() -> None:
    client = _Client()
    client.frames()
    client.request(1, "/big")
    sent = sum(len(p) for t, _, s, p in client.frames() if t == f.DATA and s == 1)
    assert sent == f.DEFAULT_WINDOW  # the default stream and connection windows
    client.send(f.frame(f.WINDOW_UPDATE, 0, 0, f.U32.pack(100_000)))
    assert client.frames() == []  # the stream's own window is still empty
    client.send(f.frame(f.WINDOW_UPDATE, 0, 1, f.U32.pack(100_000)))
    rest = [(flags, p) for t, flags, s, p in client.frames() if t == f.DATA]
    assert sum(len(p) for _, p in rest) == 100_000 - f.DEFAULT_WINDOW
    assert rest[-1][0] & f.FLAG_END_STREAM
    assert all(len(p) <= f.DEFAULT_MAX_FRAME for _, p in rest)


async def test_a_body_announced_over_the_limit_is_refused_at_once() -> None:
    client = _Client()
    client.frames()
    client.request(1, "/now", headers=[("content-length", "5000")], end=False)
    frames = client.frames()
    assert _types(frames) == [f.HEADERS, f.DATA, f.RST_STREAM]
    assert client.decoder.decode(frames[0][3])[0] == (":status", "413")
    assert frames[1][3] == b"length limit exceeded"
    assert client.app.requests == []
    # the rest of the body, still in flight, is ignored; the connection keeps serving
    client.send(f.frame(f.DATA, f.FLAG_END_STREAM, 1, b"x" * 500))
    client.request(3, "/now", b"ok")
    assert client.responses()[3][0] == 200


async def test_a_body_growing_over_the_limit_is_refused_while_it_arrives() -> None:
    client = _Client()
    client.frames()
    client.request(1, "/now", b"x" * 600, end=False)
    client.send(f.frame(f.DATA, 0, 1, b"x" * 600))
    assert client.responses()[1][0] == 413
    assert client.app.requests == []


async def test_a_header_list_over_the_limit_is_431_and_ends_the_connection() -> None:
    client = _Client()
    client.frames()
    client.request(1, "/now", headers=[("x-big", "v" * 3000)])
    frames = client.frames()
    assert client.decoder.decode(frames[0][3])[0] == (":status", "431")
    goaway = [p for t, _, _, p in frames if t == f.GOAWAY]
    assert goaway and f.U32.unpack(goaway[0][4:8])[0] == f.ERROR_ENHANCE_YOUR_CALM
    assert client.transport.closed and client.app.requests == []


async def test_a_header_block_over_the_limit_in_continuations_is_refused_unbuffered() -> None:
    client = _Client()
    client.frames()
    block = client.encoder.encode([(":method", "GET"), (":path", "/now")])
    client.send(f.frame(f.HEADERS, 0, 1, block))
    for _ in range(3):
        client.send(f.frame(f.CONTINUATION, 0, 1, b"\x00" * 1000))
    assert client.transport.closed
    assert client.server._continuation is None


async def test_too_many_headers_is_431() -> None:
    client = _Client()
    client.frames()
    client.request(1, "/now", headers=[(f"x-h{i}", "v") for i in range(20)])
    assert client.responses()[1][0] == 431
    assert not client.transport.closed  # the HPACK state is intact: it keeps serving
    client.request(3, "/now")
    assert client.responses()[3][0] == 200


async def test_streams_past_the_concurrency_limit_are_refused() -> None:
    client = _Client()
    client.frames()
    for index in range(MAX_CONCURRENT_STREAMS + 1):
        client.request(2 * index + 1, "/later")
    resets = [(s, p) for t, _, s, p in client.frames() if t == f.RST_STREAM]
    assert resets == [(2 * MAX_CONCURRENT_STREAMS + 1, f.U32.pack(f.ERROR_REFUSED_STREAM))]


async def test_broken_framing_ends_the_connection_with_goaway() -> None:
    for data, code in (
        (f.FRAME_HEADER.pack(20_000 >> 8, 20_000 & 0xFF, f.DATA, 0, 1), f.ERROR_FRAME_SIZE),
        (f.frame(f.HEADERS, f.FLAG_END_HEADERS, 2, b"\x82"), f.ERROR_PROTOCOL),  # even id
        (f.frame(f.HEADERS, f.FLAG_END_HEADERS, 1, b"\xfe"), f.ERROR_COMPRESSION),  # no index
        (f.frame(f.PUSH_PROMISE, 0, 1, b"\0\0\0\2"), f.ERROR_PROTOCOL),
    ):
        client = _Client()
        client.frames()
        client.send(data)
        goaway = [p for t, _, _, p in client.frames() if t == f.GOAWAY]
        assert goaway and f.U32.unpack(goaway[0][4:8])[0] == code, data
        assert client.transport.closed


async def test_a_wrong_preface_after_pri_is_refused() -> None:
    transport = FakeTransport()
    http1 = _HttpProtocol(RecordingApp(), limits=LIMITS)
    http1.connection_made(transport)  # type: ignore[arg-type]
    http1.data_received(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
    assert not hasattr(transport, "protocol") and transport.closed  # HTTP/1.1's 400


async def test_ping_is_answered_and_client_reset_abandons_the_answer() -> None:
    client = _Client()
    client.frames()
    client.send(f.frame(f.PING, 0, 0, b"12345678"))
    assert client.frames() == [(f.PING, f.FLAG_ACK, 0, b"12345678")]
    client.request(1, "/later")
    abandoned: list[bool] = []
    client.app.deferred[0].on_abandon = lambda: abandoned.append(True)
    client.send(f.frame(f.RST_STREAM, 0, 1, f.U32.pack(f.ERROR_CANCEL)))
    assert abandoned == [True]
    client.app.deferred[0].resolve(Response(200, b"late"))
    assert client.frames() == []


async def test_a_raw_utf8_path_is_percent_encoded_as_on_http1() -> None:
    client = _Client()
    client.frames()
    block = client.encoder.encode([(b":method", b"POST"), (b":path", "/Counter/ключ/add".encode())])
    client.send(f.frame(f.HEADERS, f.FLAG_END_HEADERS | f.FLAG_END_STREAM, 1, block))
    assert client.app.requests[0].path == "/Counter/ключ/add"


async def test_a_stalled_body_gets_408_and_an_idle_connection_goaway() -> None:
    client = _Client()
    client.frames()
    client.request(1, "/now", b"x", end=False)
    start = client.server._streams[1].last_read
    client.server.check_timeouts(start + LIMITS.body_timeout_s + 1)
    assert client.responses()[1][0] == 408
    assert not client.transport.closed
    client.server.check_timeouts(start + LIMITS.idle_timeout_s + 5)
    assert _types(client.frames()) == [f.GOAWAY] and client.transport.closed


async def test_a_client_goaway_closes_once_answers_are_out() -> None:
    client = _Client()
    client.frames()
    client.request(1, "/later")
    client.send(f.frame(f.GOAWAY, 0, 0, f.U32.pack(1) + f.U32.pack(0)))
    assert not client.transport.closed
    client.app.deferred[0].resolve(Response(200, b"done"))
    await _turn()
    assert client.transport.closed


async def _turn() -> None:
    import asyncio

    await asyncio.sleep(0)


async def test_a_body_that_differs_from_its_content_length_is_malformed() -> None:
    client = _Client()
    client.frames()
    client.request(1, "/now", b"abc", headers=[("content-length", "5")])  # shorter
    client.request(3, "/now", b"abcdefg", headers=[("content-length", "5")], end=False)
    client.request(5, "/now", b"", headers=[("content-length", "x")])
    resets = [(s, p) for t, _, s, p in client.frames() if t == f.RST_STREAM]
    assert resets == [(sid, f.U32.pack(f.ERROR_PROTOCOL)) for sid in (1, 3, 5)]
    assert client.app.requests == [] and not client.transport.closed
