"""The SDK's ASGI app driven with ASGI messages: no sockets, no ASGI server.

ASGI servers such as hypercorn drop an HTTP/2 stream as soon as the app ends its
response; a frame the Restate server sends afterwards (its END_STREAM) then breaks the
whole connection, failing every other invocation on it. So the app must end its
response only after the request ended.
"""

from __future__ import annotations

import asyncio
from typing import Any

import restate_sdk as restate
from restate_server.protocol import messages as pm
from restate_server.protocol.framing import FrameDecoder, encode_frame

svc = restate.Service("Svc")


@svc.handler()
async def greet(ctx: restate.Context, name: str) -> str:
    return f"Hello, {name}!"


APP = restate.app([svc])
CONTENT_TYPE = b"application/vnd.restate.invocation.v5"


def _scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "http_version": "2",
        "method": "POST",
        "path": path,
        "headers": [(b"content-type", CONTENT_TYPE)],
    }


def _start_frames() -> bytes:
    start = pm.StartMessage(
        id=bytes(range(24)),
        debug_id="inv_1",
        known_entries=1,
        random_seed=1,
    )
    return encode_frame(start) + encode_frame(pm.InputCommandMessage(value=b'"Ann"'))


class _Peer:
    """The server's side of one stream: request messages in, response messages out."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.requests: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.sent: list[dict[str, Any]] = []
        self.request_ended = False
        self.response_ended_before_request = False
        self.output = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        message = await self.requests.get()
        if not message.get("more_body", False):
            self.request_ended = True
        return message

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body":
            if message.get("body"):
                self.output.set()
            if not message.get("more_body", False) and not self.request_ended:
                self.response_ended_before_request = True

    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


async def test_invocation_response_ends_only_after_the_request_ended() -> None:
    peer = _Peer("/invoke/Svc/greet")
    peer.requests.put_nowait({"type": "http.request", "body": _start_frames(), "more_body": True})
    app = asyncio.create_task(APP(_scope(peer.path), peer.receive, peer.send))
    await asyncio.wait_for(peer.output.wait(), 5)
    await asyncio.sleep(0.05)  # the handler is done: Output and End are out
    messages = [pm.decode_message(f.type_id, f.body) for f in FrameDecoder().feed(peer.body())]
    assert messages == [pm.OutputCommandMessage(value=b'"Hello, Ann!"'), pm.EndMessage()]
    assert not app.done(), "the app must wait for the server to close its side"
    peer.requests.put_nowait({"type": "http.request", "body": b"", "more_body": False})
    await asyncio.wait_for(app, 5)
    assert not peer.response_ended_before_request
    assert peer.sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}


async def test_error_responses_also_wait_for_the_request_to_end() -> None:
    peer = _Peer("/invoke/Svc/missing")
    peer.requests.put_nowait({"type": "http.request", "body": _start_frames(), "more_body": True})
    app = asyncio.create_task(APP(_scope(peer.path), peer.receive, peer.send))
    await asyncio.sleep(0.05)
    assert peer.sent[0]["type"] == "http.response.start" and peer.sent[0]["status"] == 404
    assert not app.done()
    peer.requests.put_nowait({"type": "http.request", "body": b"", "more_body": False})
    await asyncio.wait_for(app, 5)
    assert not peer.response_ended_before_request


async def test_a_disconnect_ends_the_attempt() -> None:
    peer = _Peer("/invoke/Svc/greet")
    peer.requests.put_nowait({"type": "http.request", "body": _start_frames(), "more_body": True})
    app = asyncio.create_task(APP(_scope(peer.path), peer.receive, peer.send))
    await asyncio.wait_for(peer.output.wait(), 5)
    peer.requests.put_nowait({"type": "http.disconnect"})
    await asyncio.wait_for(app, 5)
