"""Our HTTP/1.1 server's limits and refusals (no sockets): sizes refused before they are
buffered (413, 414, 431), unknown methods (405), garbage after accepted requests, raw
UTF-8 request targets, and the read and idle timeouts."""

from __future__ import annotations

from restate_server.http_server import HttpLimits, Response, _HttpProtocol
from tests.unit.http_fakes import SMALL_LIMITS as LIMITS
from tests.unit.http_fakes import FakeTransport, RecordingApp


def _connect(limits: HttpLimits = LIMITS) -> tuple[_HttpProtocol, FakeTransport, RecordingApp]:
    app = RecordingApp()
    protocol = _HttpProtocol(app, limits=limits)
    transport = FakeTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport, app


def _post(path: str, body: bytes, extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


async def test_garbage_after_an_accepted_request_is_refused_after_its_answer() -> None:
    """The accepted request is answered first, then the 400, then the connection closes
    (a client must not take the 400 for the answer to its request)."""
    protocol, transport, app = _connect()
    protocol.data_received(_post("/later", b"1") + b"GARBAGE\r\n\r\n")
    assert len(app.requests) == 1 and transport.chunks == []
    app.deferred[0].resolve(Response(200, b"1"))
    assert transport.status_lines == [b"HTTP/1.1 200 OK", b"HTTP/1.1 400 Bad Request"]
    assert transport.closed
    protocol.data_received(_post("/now", b"1"))  # nothing more is read
    assert len(app.requests) == 1


async def test_a_body_announced_over_the_limit_is_refused_at_once() -> None:
    protocol, transport, app = _connect()
    protocol.data_received(b"POST /now HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n")
    assert transport.status_lines == [b"HTTP/1.1 413 Payload Too Large"]
    assert transport.chunks[0].endswith(b"\r\n\r\nlength limit exceeded")
    assert b"connection: close" in transport.chunks[0] and transport.closed
    assert app.requests == []


async def test_a_chunked_body_over_the_limit_is_refused() -> None:
    protocol, transport, app = _connect()
    head = b"POST /now HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
    protocol.data_received(head + b"400\r\n" + b"a" * 1024 + b"\r\n")
    assert transport.status_lines == [b"HTTP/1.1 413 Payload Too Large"]
    assert app.requests == []


async def test_a_body_at_the_limit_passes() -> None:
    protocol, transport, app = _connect()
    protocol.data_received(_post("/now", b"a" * 1000))
    assert transport.status_lines == [b"HTTP/1.1 200 OK"]
    assert app.requests[0].body == b"a" * 1000


async def test_too_many_headers_431() -> None:
    protocol, transport, app = _connect()
    headers = "".join(f"x-h{i}: v\r\n" for i in range(11))
    protocol.data_received(f"GET /now HTTP/1.1\r\n{headers}\r\n".encode())
    assert transport.status_lines == [b"HTTP/1.1 431 Request Header Fields Too Large"]
    assert transport.closed and app.requests == []


async def test_a_huge_header_is_refused_before_it_is_buffered() -> None:
    """Sent in pieces, it is refused once the head's bytes pass the limit: the rest is
    never fed to the parser (which would keep the whole value), so it holds at most the
    limit and one chunk."""
    protocol, transport, _ = _connect()
    protocol.data_received(b"GET /now HTTP/1.1\r\nx-big: ")
    fed = 0
    while not transport.chunks and fed < 100:
        protocol.data_received(b"a" * 512)
        fed += 1
    assert transport.status_lines == [b"HTTP/1.1 431 Request Header Fields Too Large"]
    # refused on the chunk that passed the limit
    assert (fed - 1) * 512 <= LIMITS.max_head_bytes + 512


async def test_a_long_url_414() -> None:
    protocol, transport, _ = _connect()
    protocol.data_received(b"GET /" + b"a" * 600 + b" HTTP/1.1\r\nhost: x\r\n\r\n")
    assert transport.status_lines == [b"HTTP/1.1 414 URI Too Long"]


async def test_unknown_method_405_and_garbage_400() -> None:
    protocol, transport, _ = _connect()
    protocol.data_received(b"FOO /now HTTP/1.1\r\nhost: x\r\n\r\n")
    assert transport.status_lines == [b"HTTP/1.1 405 Method Not Allowed"]
    protocol, transport, _ = _connect()
    protocol.data_received(b"HELLO\r\n\r\n")
    assert transport.status_lines == [b"HTTP/1.1 400 Bad Request"]


async def test_a_raw_utf8_request_target_is_accepted() -> None:
    protocol, transport, app = _connect()
    path = "/Counter/ключ-raw/add"
    head = f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\n1"
    protocol.data_received(head.encode())
    assert transport.status_lines == [b"HTTP/1.1 200 OK"]
    assert app.requests[0].path == "/Counter/ключ-raw/add"
    assert app.requests[0].body == b"1"


async def test_timeouts() -> None:
    # a head that never completes (slowloris)
    protocol, transport, _ = _connect()
    protocol.data_received(b"GET /now HTTP/1.1\r\nhost: x\r\n")
    started = protocol._phase_since
    protocol.check_timeouts(started + 5)
    assert transport.chunks == []
    protocol.check_timeouts(started + 11)
    assert transport.status_lines == [b"HTTP/1.1 408 Request Timeout"] and transport.closed
    # a body that stops arriving
    protocol, transport, _ = _connect()
    protocol.data_received(b"POST /now HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n12")
    last = protocol._last_read
    protocol.check_timeouts(last + 29)
    assert transport.chunks == []
    protocol.check_timeouts(last + 31)
    assert transport.status_lines == [b"HTTP/1.1 408 Request Timeout"]
    # an idle kept-alive connection is closed without an answer; a busy one is not
    protocol, transport, _ = _connect()
    protocol.data_received(_post("/now", b"1"))
    protocol.check_timeouts(protocol._last_answer + 61)
    assert transport.closed and transport.status_lines == [b"HTTP/1.1 200 OK"]
    protocol, transport, app = _connect()
    protocol.data_received(_post("/later", b"1"))
    protocol.check_timeouts(protocol._last_read + 3600)
    assert not transport.closed
    app.deferred[0].resolve(Response(200, b"late"))
    assert transport.status_lines == [b"HTTP/1.1 200 OK"]


async def test_a_big_head_in_one_chunk_431() -> None:
    protocol, transport, _ = _connect()
    protocol.data_received(b"GET /now HTTP/1.1\r\nx-big: " + b"a" * 5000 + b"\r\n\r\n")
    assert transport.status_lines == [b"HTTP/1.1 431 Request Header Fields Too Large"]


async def test_a_big_head_in_two_chunks_431() -> None:
    """A head that begins in a small chunk and ends in the next one is measured too (the
    second chunk used to go uncounted, so a 100 KiB header sent in two reads ran)."""
    splits = [
        (b"GET /now HTTP/1.1\r\nx-big: ", b"a" * 5000 + b"\r\n\r\n"),
        (b"GET /now HTTP/1.1", b"\r\nx-big: " + b"a" * 2500 + b"\r\n\r\n"),
    ]
    for first, rest in splits:
        protocol, transport, app = _connect()
        protocol.data_received(first)
        protocol.data_received(rest)
        assert transport.status_lines == [b"HTTP/1.1 431 Request Header Fields Too Large"]
        assert app.requests == []


async def test_a_big_head_in_three_chunks_431() -> None:
    protocol, transport, app = _connect()
    protocol.data_received(b"GET /now HTTP/1.1\r\nx-big: ")
    protocol.data_received(b"a" * 1200)
    protocol.data_received(b"a" * 1200 + b"\r\n\r\n")
    assert transport.status_lines == [b"HTTP/1.1 431 Request Header Fields Too Large"]
    assert app.requests == []


async def test_too_many_headers_in_pieces_431() -> None:
    headers = "".join(f"x-h{i}: v\r\n" for i in range(11)).encode()
    whole = b"GET /now HTTP/1.1\r\n" + headers + b"\r\n"
    for size in (1, 7, 40):
        protocol, transport, app = _connect()
        for at in range(0, len(whole), size):
            protocol.data_received(whole[at : at + size])
        assert transport.status_lines == [b"HTTP/1.1 431 Request Header Fields Too Large"]
        assert app.requests == []


async def test_a_head_under_the_limit_ending_in_a_chunk_with_its_body_passes() -> None:
    """The chunk that ends a head may carry the body: its bytes do not count as head."""
    protocol, transport, app = _connect()
    head = b"POST /now HTTP/1.1\r\ncontent-length: 1000\r\nx-pad: " + b"p" * 1500 + b"\r\n\r\n"
    protocol.data_received(head[:20])
    protocol.data_received(head[20:] + b"b" * 1000)
    assert transport.status_lines == [b"HTTP/1.1 200 OK"]
    assert app.requests[0].body == b"b" * 1000


async def test_a_head_over_many_small_chunks_under_the_limit_passes() -> None:
    protocol, transport, app = _connect()
    head = b"GET /now HTTP/1.1\r\nx-pad: " + b"p" * 1900 + b"\r\n\r\n"
    for at in range(0, len(head), 100):
        protocol.data_received(head[at : at + 100])
    assert transport.status_lines == [b"HTTP/1.1 200 OK"]
    assert app.requests[0].headers["x-pad"] == "p" * 1900


async def test_pipelined_small_requests_in_one_big_chunk_pass() -> None:
    """The head limit is per request: many small requests in one chunk are fine."""
    protocol, transport, app = _connect()
    one = b"GET /now HTTP/1.1\r\nhost: x\r\nx-pad: " + b"p" * 100 + b"\r\n\r\n"
    protocol.data_received(one * 100)
    assert len(app.requests) == 100
    assert transport.status_lines == [b"HTTP/1.1 200 OK"] * 100


async def test_a_request_line_of_another_http_version_is_refused_unrun() -> None:
    protocol, transport, app = _connect()
    protocol.data_received(b"POST /now HTTP/2.0\r\nhost: x\r\ncontent-length: 1\r\n\r\n1")
    assert app.requests == []
    assert transport.status_lines == [b"HTTP/1.1 400 Bad Request"] and transport.closed


async def test_framing_refusals_say_their_body_is_json() -> None:
    protocol, transport, _ = _connect()
    protocol.data_received(
        b"POST /now HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n"
    )
    head = transport.chunks[0].split(b"\r\n\r\n", 1)[0]
    assert b"\r\ncontent-type: application/json" in head
