"""Our HTTP/1.1 server (ingress and admin): answers now, later (Deferred) or from a coroutine,
always in request order on a connection, with a fake transport (no sockets)."""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from restate_server.http2.frames import PREFACE
from restate_server.http_server import Deferred, Request, Response, _HttpProtocol
from tests.support.collector import collector_off
from tests.unit.http_fakes import FakeTransport


class _Transport(FakeTransport):
    def statuses(self) -> list[bytes]:
        return [
            chunk.split(b"\r\n", 1)[0] + b"|" + chunk.rsplit(b"\r\n", 1)[1] for chunk in self.chunks
        ]


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode()


class _App:
    def __init__(self) -> None:
        self.deferred: dict[str, Deferred] = {}

    def __call__(self, request: Request) -> Any:
        kind = request.raw_path.strip("/")
        if kind.startswith("now"):
            return Response(200, kind.encode())
        if kind.startswith("later"):
            deferred = Deferred()
            self.deferred[kind] = deferred
            return deferred
        if kind == "boom":
            raise RuntimeError("handler bug")

        async def slow() -> Response:
            await asyncio.sleep(0.01)
            return Response(201, kind.encode())

        return slow()


def _connect(app: _App) -> tuple[_HttpProtocol, _Transport]:
    protocol = _HttpProtocol(app)
    transport = _Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def test_pipelined_requests_are_answered_in_order() -> None:
    app = _App()
    protocol, transport = _connect(app)
    protocol.data_received(_get("/later1") + _get("/now1") + _get("/coro") + _get("/now2"))
    assert transport.chunks == [], "nothing may overtake the deferred first answer"
    app.deferred["later1"].resolve(Response(202, b"l1"))
    assert transport.statuses() == [b"HTTP/1.1 202 Accepted|l1", b"HTTP/1.1 200 OK|now1"]
    await asyncio.sleep(0.05)
    assert transport.statuses()[2:] == [b"HTTP/1.1 201 Created|coro", b"HTTP/1.1 200 OK|now2"]


async def test_a_deferred_answer_is_written_in_the_resolving_call() -> None:
    app = _App()
    protocol, transport = _connect(app)
    protocol.data_received(_get("/later"))
    app.deferred["later"].resolve(Response(200, b"x"))
    assert transport.statuses() == [b"HTTP/1.1 200 OK|x"]
    app.deferred["later"].resolve(Response(500, b"again"))  # resolving twice is ignored
    assert len(transport.chunks) == 1


async def test_a_failing_handler_gets_a_500_and_the_connection_goes_on() -> None:
    app = _App()
    protocol, transport = _connect(app)
    protocol.data_received(_get("/boom") + _get("/now"))
    assert transport.statuses()[0].startswith(b"HTTP/1.1 500")
    assert transport.statuses()[1] == b"HTTP/1.1 200 OK|now"


async def test_many_immediate_pipelined_answers_do_not_recurse() -> None:
    app = _App()
    protocol, transport = _connect(app)
    protocol.data_received(b"".join(_get(f"/now{i}") for i in range(5000)))
    assert len(transport.chunks) == 5000


async def test_an_answer_after_the_client_left_is_dropped() -> None:
    app = _App()
    protocol, transport = _connect(app)
    protocol.data_received(_get("/later"))
    protocol.connection_lost(None)
    app.deferred["later"].resolve(Response(200, b"x"))
    assert transport.chunks == []


async def test_a_client_leaving_abandons_only_the_answer_it_waits_for() -> None:
    app = _App()
    protocol, _transport = _connect(app)
    protocol.data_received(_get("/later1"))
    abandoned: list[str] = []
    app.deferred["later1"].on_abandon = lambda: abandoned.append("later1")
    app.deferred["later1"].resolve(Response(200, b"x"))  # answered: nothing to abandon
    protocol.data_received(_get("/later2"))
    app.deferred["later2"].on_abandon = lambda: abandoned.append("later2")
    protocol.connection_lost(None)
    assert abandoned == ["later2"]


async def test_head_answers_carry_no_body() -> None:
    app = _App()
    protocol, transport = _connect(app)
    protocol.data_received(b"HEAD /now HTTP/1.1\r\nhost: x\r\n\r\n" + _get("/now2"))
    head, full = transport.chunks
    assert head.endswith(b"content-length: 3\r\n\r\n")
    assert full.endswith(b"\r\n\r\nnow2")


def test_request_path_and_query() -> None:
    request = Request("GET", "/a%20b/c?x=1&x=2&flag=&y=%2F", [], b"")
    assert request.path == "/a b/c"
    assert request.query == {"x": "1", "flag": "", "y": "/"}
    assert Request("GET", "/plain", [], b"").query == {}


async def test_expect_100_continue_gets_the_interim_answer() -> None:
    app = _App()
    protocol, transport = _connect(app)
    protocol.data_received(
        b"POST /now HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 2\r\n\r\n"
    )
    assert transport.chunks == [b"HTTP/1.1 100 Continue\r\n\r\n"]
    protocol.data_received(b"{}")
    assert transport.chunks[1].startswith(b"HTTP/1.1 200 OK")


async def test_a_closed_connection_is_freed_without_the_collector() -> None:
    app = _App()
    with collector_off():
        protocol, transport = _connect(app)
        protocol.data_received(_get("/now1") + _get("/now2"))
        assert transport.statuses() == [b"HTTP/1.1 200 OK|now1", b"HTTP/1.1 200 OK|now2"]
        protocol.connection_lost(None)
        gone = weakref.ref(protocol)
        del protocol, transport
        assert gone() is None


async def test_a_connection_handed_over_to_http2_is_freed_without_the_collector() -> None:
    app = _App()
    with collector_off():
        protocol, transport = _connect(app)
        protocol.data_received(PREFACE)
        assert transport.protocol is not protocol
        gone = weakref.ref(protocol)
        del protocol
        assert gone() is None
