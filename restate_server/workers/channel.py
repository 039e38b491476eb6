"""One fabric connection: framed messages in both directions over a stream socket.

Outgoing messages written in one turn of the loop leave in one ``write``: a worker
that forwards many requests pays one system call per turn, not one per request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from restate_server.workers.messages import Message, append_frame, split_frames

log = logging.getLogger(__name__)


class ChannelHandler(Protocol):
    def received(self, channel: Channel, message: Message) -> None: ...

    def closed(self, channel: Channel) -> None: ...


class Channel(asyncio.Protocol):
    def __init__(self, handler: ChannelHandler) -> None:
        self._handler = handler
        self._transport: asyncio.Transport | None = None
        self._inbound = bytearray()
        self._outbound = bytearray()
        self._flush_scheduled = False
        self.open = False

    # ---- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self.open = True

    def data_received(self, data: bytes) -> None:
        self._inbound.extend(data)
        try:
            messages = split_frames(self._inbound)
        except Exception as exc:  # a broken peer: drop the connection, not the process
            log.error("fabric: undecodable message from a peer (%s); closing", exc)
            self.close()
            return
        handler = self._handler
        for message in messages:
            try:
                handler.received(self, message)
            except Exception:
                log.exception("fabric: handling %s failed", type(message).__name__)

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        self._transport = None
        self._outbound.clear()
        self._handler.closed(self)

    # ---- sending

    def send(self, message: Message) -> None:
        if not self.open:
            return  # the peer is gone; whoever needs delivery resends on reconnect
        append_frame(self._outbound, message)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._transport is not None and self._outbound:
            self._transport.write(bytes(self._outbound))
        self._outbound.clear()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
