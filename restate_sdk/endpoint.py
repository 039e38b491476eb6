"""Serving services: an ASGI application for discovery and invocations.

Served by hypercorn, over HTTP/2 cleartext the exchange is full duplex (BIDI_STREAM):
commands stream out while notifications stream in. Over HTTP/1.1 the runtime sends
the whole journal first (REQUEST_RESPONSE) and every await that would block ends
the attempt with a suspension.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from restate_sdk.definitions import AnyService, HandlerInfo
from restate_sdk.exceptions import SdkInternalException
from restate_sdk.identity import IdentityVerifier
from restate_sdk.invocation import Engine
from restate_sdk.manifest import build_manifest, encode_manifest, negotiate_manifest_version
from restate_sdk.vm import InvocationMachine

SDK_NAME = "restate-sdk-python-pure/0.1.0"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_INVOKE = re.compile(r"/invoke/([^/]+)/([^/]+)$")
_CONTENT_TYPE = re.compile(r"^application/vnd\.restate\.invocation\.v(\d+)$")


class Endpoint:
    def __init__(self) -> None:
        self.services: dict[str, AnyService] = {}
        self.protocol: str | None = None  # None: by HTTP version; or BIDI_STREAM / REQUEST_RESPONSE
        self.identity = IdentityVerifier([])

    def bind(self, *services: AnyService) -> Endpoint:
        for service in services:
            if service.name in self.services:
                raise ValueError(f"service '{service.name}' is bound twice")
            self.services[service.name] = service
        return self

    def streaming_protocol(self) -> Endpoint:
        self.protocol = "BIDI_STREAM"
        return self

    def request_response_protocol(self) -> Endpoint:
        self.protocol = "REQUEST_RESPONSE"
        return self

    def identity_key(self, key: str) -> Endpoint:
        self.identity.add_key(key)
        return self

    def app(self) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
        return _Asgi(self)


def app(
    services: list[AnyService],
    protocol: str | None = None,
    identity_keys: list[str] | None = None,
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """The ASGI application serving ``services`` (like ``restate.app``)."""
    endpoint = Endpoint().bind(*services)
    if protocol in ("bidi", "BIDI_STREAM"):
        endpoint.streaming_protocol()
    elif protocol in ("request_response", "REQUEST_RESPONSE"):
        endpoint.request_response_protocol()
    for key in identity_keys or []:
        endpoint.identity_key(key)
    return endpoint.app()


async def _simple(
    receive: Receive, send: Send, status: int, body: bytes, content_type: str = "text/plain"
) -> None:
    """A whole response, ended only after the request ended (see ``_run_attempt``)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"x-restate-server", SDK_NAME.encode()),
            ],
        }
    )
    await _drain(receive)
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


class _Asgi:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if path.endswith("/health"):
            await _simple(receive, send, 200, b'{"status":"ok"}', "application/json")
            return
        if path.endswith("/discover") or _INVOKE.search(path):
            problem = self.endpoint.identity.verify(headers, path)
            if problem is not None:
                await _simple(receive, send, 401, problem.encode())
                return
        if path.endswith("/discover"):
            await self._discover(scope, headers, receive, send)
            return
        match = _INVOKE.search(path)
        if match is None:
            await _simple(receive, send, 404, b"not found")
            return
        await self._invoke(match.group(1), match.group(2), headers, receive, send)

    async def _discover(
        self, scope: Scope, headers: dict[str, str], receive: Receive, send: Send
    ) -> None:
        mode = self.endpoint.protocol
        if mode is None:
            mode = "BIDI_STREAM" if scope.get("http_version") == "2" else "REQUEST_RESPONSE"
        manifest, needs_v4 = build_manifest(list(self.endpoint.services.values()), mode)
        version = negotiate_manifest_version(headers.get("accept"), needs_v4)
        if version is None:
            await _simple(receive, send, 415, b"unsupported endpoint manifest version")
            return
        await _simple(
            receive,
            send,
            200,
            encode_manifest(manifest),
            f"application/vnd.restate.endpointmanifest.v{version}+json",
        )

    def _handler(self, service: str, handler: str) -> HandlerInfo | None:
        definition = self.endpoint.services.get(service)
        return None if definition is None else definition.handlers.get(handler)

    async def _invoke(
        self, service: str, handler: str, headers: dict[str, str], receive: Receive, send: Send
    ) -> None:
        content_type = headers.get("content-type", "")
        version_match = _CONTENT_TYPE.match(content_type)
        version = int(version_match.group(1)) if version_match else 0
        if not 5 <= version <= 7:
            await _simple(receive, send, 415, b"unsupported service protocol version")
            return
        info = self._handler(service, handler)
        if info is None:
            await _simple(receive, send, 404, f"unknown handler {service}/{handler}".encode())
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", content_type.encode()),
                    (b"x-restate-server", SDK_NAME.encode()),
                ],
            }
        )
        await _run_attempt(info, version, headers, receive, send)


async def _run_attempt(
    info: HandlerInfo, version: int, headers: dict[str, str], receive: Receive, send: Send
) -> None:
    machine = InvocationMachine(version)
    wake_writer = asyncio.Event()
    engine = Engine(machine, info, headers, wake_writer.set)
    ready = asyncio.Event()
    done = False

    async def read() -> None:
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    break
                body = message.get("body", b"")
                if body and not done:
                    machine.feed(body)
                    if machine.ready:
                        ready.set()
                    engine.on_input()
                if not message.get("more_body", False):
                    break
        except SdkInternalException as error:
            machine.error(error.code, error.message)
            wake_writer.set()
        finally:
            machine.close_input()
            ready.set()
            if not done:
                engine.on_input()

    async def write() -> None:
        while not done:
            await wake_writer.wait()
            wake_writer.clear()
            data = machine.take_output()
            if data:
                await send({"type": "http.response.body", "body": data, "more_body": True})

    loop = asyncio.get_running_loop()
    reader = loop.create_task(read())
    writer = loop.create_task(write())
    try:
        await ready.wait()
        if not machine.ended:
            if not machine.ready:
                machine.error(571, "the request ended before the whole journal was received")
            else:
                await engine.run()
    finally:
        done = True
        wake_writer.set()
        await asyncio.gather(writer, return_exceptions=True)
    tail = machine.take_output()
    if tail:
        await send({"type": "http.response.body", "body": tail, "more_body": True})
    # Close our side only after the server closed its side: ASGI servers such as
    # hypercorn forget the stream once the response ends, and a late frame from the
    # server (its END_STREAM) would then break the whole HTTP/2 connection.
    await asyncio.gather(reader, return_exceptions=True)
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
