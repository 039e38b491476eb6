"""The receiving side of the fabric in a worker: submits to its partitions, calls to it.

A submit for a partition of this worker goes to its processor as if it came from this
process. Its answer is sent back on the connection it came in on; so is ``Done`` once
its effects are committed. Until the worker has started its partitions (it waits for
the registry from the supervisor first), submits wait in arrival order.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol

from restate_server.partition.waiters import Answer as AnswerAction
from restate_server.partition.waiters import Waiters
from restate_server.workers.channel import Channel
from restate_server.workers.link import is_tcp_address
from restate_server.workers.messages import Answer, Call, Done, Message, Result, Submit

log = logging.getLogger(__name__)

CallHandler = Callable[[bytes], bytes | Awaitable[bytes]]


class LocalPartition(Protocol):
    def submit(self, command: Any, on_durable: Callable[[], None] | None = None) -> None: ...


class FabricEndpoint:
    def __init__(self, address: str, waiters: Waiters) -> None:
        self.address = address
        self._waiters = waiters
        self._partitions: dict[int, LocalPartition] | None = None
        self._early: list[tuple[Channel, Submit]] = []
        self._handlers: dict[str, CallHandler] = {}
        self._server: asyncio.AbstractServer | None = None
        self._channels: set[Channel] = set()
        self._answering: set[asyncio.Future[None]] = set()

    def on_call(self, method: str, handler: CallHandler) -> None:
        self._handlers[method] = handler

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if is_tcp_address(self.address):
            host, port = self.address.rsplit(":", 1)
            self._server = await loop.create_server(self._accepted, host, int(port))
            bound = self._server.sockets[0].getsockname()
            self.address = f"{bound[0]}:{bound[1]}"  # the port, if 0 was asked for
        else:
            self._server = await loop.create_unix_server(
                self._accepted, sock=bind_unix(self.address)
            )

    def _accepted(self) -> Channel:
        channel = Channel(_Inbound(self))
        self._channels.add(channel)  # closed with the endpoint
        return channel

    def serve_partitions(self, partitions: dict[int, LocalPartition]) -> None:
        """The partitions are running: hand them what waited, then everything new."""
        self._partitions = partitions
        early, self._early = self._early, []
        for channel, message in early:
            self._submit(channel, message)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for channel in list(self._channels):
            channel.close()

    # ---- inbound

    def _submit(self, channel: Channel, message: Submit) -> None:
        partitions = self._partitions
        if partitions is None:
            self._early.append((channel, message))
            return
        partition = partitions.get(message.partition_id)
        if partition is None:  # the sender's placement differs from ours: a bug
            log.error("fabric: partition %s is not led by this worker", message.partition_id)
            return
        if message.request_id is not None:
            self._waiters.register_forward(message.request_id, partial(_answer, channel))
        on_durable = None
        if message.done is not None:
            on_durable = partial(channel.send, Done(message.done))
        partition.submit(message.command, on_durable)

    def _call(self, channel: Channel, message: Call) -> None:
        handler = self._handlers.get(message.method)
        if handler is None:
            channel.send(Result(message.token, error=f"unknown call {message.method!r}"))
            return
        try:
            result = handler(message.payload)
        except Exception as exc:
            log.exception("fabric: call %s failed", message.method)
            channel.send(Result(message.token, error=str(exc) or type(exc).__name__))
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(_answer_later(channel, message, result))
            self._answering.add(task)
            task.add_done_callback(self._answering.discard)
        else:
            channel.send(Result(message.token, result))


class _Inbound:
    """The handler of one accepted connection."""

    def __init__(self, endpoint: FabricEndpoint) -> None:
        self._endpoint = endpoint

    def received(self, channel: Channel, message: Message) -> None:
        endpoint = self._endpoint
        if isinstance(message, Submit):
            endpoint._submit(channel, message)
        elif isinstance(message, Call):
            endpoint._call(channel, message)
        else:
            log.warning("fabric: unexpected %s from a peer", type(message).__name__)

    def closed(self, channel: Channel) -> None:
        self._endpoint._channels.discard(channel)


def _answer(channel: Channel, answer: AnswerAction) -> None:
    channel.send(Answer(answer))


async def _answer_later(channel: Channel, message: Call, result: Awaitable[bytes]) -> None:
    try:
        payload = await result
    except Exception as exc:
        log.exception("fabric: call %s failed", message.method)
        channel.send(Result(message.token, error=str(exc) or type(exc).__name__))
        return
    channel.send(Result(message.token, payload))


def bind_unix(address: str) -> socket.socket:
    """A listening Unix socket; an address starting with NUL is in Linux's abstract
    namespace (no file, no path length worries, gone when the socket closes)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if not address.startswith("\0"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address)
    sock.bind(address)
    sock.listen(256)
    sock.setblocking(False)
    return sock
