"""What both ends of our HTTP/2 connections share (``connection`` is the client toward
SDK endpoints, ``server_connection`` the ingress and admin side): cutting the byte
stream into frames, assembling header blocks from HEADERS and CONTINUATION frames, and
output gathered into one write per event-loop turn."""

from __future__ import annotations

import asyncio

from restate_server.http2.frames import (
    CONTINUATION,
    ERROR_FRAME_SIZE,
    ERROR_PROTOCOL,
    FLAG_END_HEADERS,
    U32,
    header_block,
)


class ProtocolViolation(Exception):
    """The peer broke HTTP/2's rules: the connection ends with GOAWAY ``code``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class FramedConnection(asyncio.Protocol):
    # frames larger than this end the connection (None: any size the length field allows)
    max_frame_size: int | None = None
    # a header block growing past this is handed to ``_header_block_too_large``
    max_header_block: int | None = None

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._out = bytearray()
        self._flush_scheduled = False
        # a header block still waiting for CONTINUATION frames: (stream, flags, bytes)
        self._continuation: tuple[int, int, bytearray] | None = None

    # ---- what each side implements

    def _on_frame(self, frame_type: int, flags: int, stream_id: int, payload: bytes) -> None:
        raise NotImplementedError

    def _headers_complete(self, stream_id: int, flags: int, block: bytes) -> None:
        raise NotImplementedError

    def _header_block_too_large(self, stream_id: int) -> None:
        raise ProtocolViolation(ERROR_PROTOCOL, "header block too large")

    # ---- reading

    def _read_frames(self, buffer: bytearray, pos: int) -> int:
        """Hand every whole frame of ``buffer`` from ``pos`` on to ``_on_frame``; the
        position after the last one (raises ProtocolViolation)."""
        size = len(buffer)
        unpack = U32.unpack_from
        limit = self.max_frame_size
        while size - pos >= 9:
            length = (buffer[pos] << 16) | (buffer[pos + 1] << 8) | buffer[pos + 2]
            if limit is not None and length > limit:
                raise ProtocolViolation(ERROR_FRAME_SIZE, f"frame of {length} bytes")
            end = pos + 9 + length
            if end > size:
                break
            frame_type = buffer[pos + 3]
            flags = buffer[pos + 4]
            stream_id = unpack(buffer, pos + 5)[0] & 0x7FFFFFFF
            payload = bytes(buffer[pos + 9 : end])
            pos = end
            if self._continuation is not None and frame_type != CONTINUATION:
                raise ProtocolViolation(ERROR_PROTOCOL, "expected a CONTINUATION frame")
            self._on_frame(frame_type, flags, stream_id, payload)
            if self._transport is None:  # closed by what the frame said
                break
        return pos

    def _on_headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        try:
            block = header_block(flags, payload)
        except ValueError as exc:
            raise ProtocolViolation(ERROR_PROTOCOL, str(exc)) from exc
        if flags & FLAG_END_HEADERS:
            self._headers_complete(stream_id, flags, block)
        else:
            self._continuation = (stream_id, flags, bytearray(block))

    def _on_continuation(self, flags: int, stream_id: int, payload: bytes) -> None:
        if self._continuation is None or self._continuation[0] != stream_id:
            raise ProtocolViolation(ERROR_PROTOCOL, "unexpected CONTINUATION frame")
        _, first_flags, block = self._continuation
        block += payload
        limit = self.max_header_block
        if limit is not None and len(block) > limit:
            self._continuation = None
            self._header_block_too_large(stream_id)
        elif flags & FLAG_END_HEADERS:
            self._continuation = None
            self._headers_complete(stream_id, first_flags, bytes(block))

    # ---- writing

    def _schedule_write(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._write_now)

    def _write_now(self) -> None:
        self._flush_scheduled = False
        if not self._out:
            return
        data, self._out = bytes(self._out), bytearray()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data)
