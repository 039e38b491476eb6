"""One HTTP/2 request/response exchange, full duplex."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

from restate_server.http2.errors import H2Error

if TYPE_CHECKING:
    from restate_server.http2.connection import H2ClientConnection

Headers = list[tuple[str, str]]


class H2Stream:
    """Write the request body at any time (``send``/``end``) while reading the response.

    ``send`` never blocks: data beyond the peer's flow-control window is buffered
    and flushed as the window opens.
    """

    __slots__ = (
        "_chunks",
        "_conn",
        "_data_waiter",
        "_error",
        "_response",
        "end_pending",
        "local_closed",
        "outbound",
        "remote_closed",
        "stream_id",
    )

    def __init__(self, conn: H2ClientConnection, stream_id: int) -> None:
        self._conn = conn
        self.stream_id = stream_id
        self._response: asyncio.Future[tuple[int, Headers]] = (
            asyncio.get_running_loop().create_future()
        )
        self._chunks: deque[bytes] = deque()
        self._data_waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None
        self.outbound = bytearray()  # request body bytes waiting for window
        self.end_pending = False
        self.local_closed = False
        self.remote_closed = False

    # ---- request side

    def send(self, data: bytes) -> None:
        if self.local_closed or self.end_pending or self._error is not None:
            return
        self.outbound += data
        self._conn.flush_stream(self)

    def end(self) -> None:
        """Half-close the request body (END_STREAM); idempotent."""
        if self.local_closed or self.end_pending or self._error is not None:
            return
        self.end_pending = True
        self._conn.flush_stream(self)

    def reset(self, error_code: int = 0x8) -> None:
        """Abort the exchange (RST_STREAM, CANCEL by default); safe at any time."""
        if self._error is not None or (self.local_closed and self.remote_closed):
            return
        self._conn.reset_stream(self, error_code)
        self.fail(H2Error("stream reset"))

    def give_up(self, error_code: int = 0x8) -> None:
        """``reset`` for want of an answer (a timeout): the connection also stops taking
        new streams if it heard nothing from the peer since this stream last did."""
        if self._error is not None or (self.local_closed and self.remote_closed):
            return
        self._conn.give_up(self, error_code)
        self.fail(H2Error("stream reset"))

    # ---- response side

    async def response(self) -> tuple[int, Headers]:
        return await self._response

    async def read(self) -> bytes:
        """Next response body chunk; b"" once the response is complete."""
        while True:
            if self._chunks:
                return self._chunks.popleft()
            if self._error is not None:
                raise self._error
            if self.remote_closed:
                return b""
            waiter = asyncio.get_running_loop().create_future()
            self._data_waiter = waiter
            try:
                await waiter
            finally:
                self._data_waiter = None

    def __aiter__(self) -> H2Stream:
        return self

    async def __anext__(self) -> bytes:
        chunk = await self.read()
        if not chunk:
            raise StopAsyncIteration
        return chunk

    @property
    def closed(self) -> bool:
        return self._error is not None or (self.local_closed and self.remote_closed)

    # ---- called by the connection

    def on_response(self, status: int, headers: Headers) -> None:
        if not self._response.done():
            self._response.set_result((status, headers))

    def on_data(self, data: bytes) -> None:
        self._chunks.append(data)
        self._wake()

    def on_end(self) -> None:
        self.remote_closed = True
        if not self._response.done():
            self._response.set_exception(H2Error("response ended without headers"))
        self._wake()

    def fail(self, error: BaseException) -> None:
        if self._error is not None:
            return
        self._error = error
        self.outbound.clear()
        if not self._response.done():
            self._response.set_exception(error)
            self._response.exception()  # mark retrieved: nobody may be waiting
        self._wake()

    def _wake(self) -> None:
        waiter = self._data_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
