"""Message framing: an 8-byte header (u16 type, u16 flags, u32 length) and the body."""

from __future__ import annotations

import struct
from typing import NamedTuple

from restate_server.protocol.errors import ProtocolError
from restate_server.protocol.messages import Message, encode_message

REQUESTED_ACK = 0x8000
HEADER_SIZE = 8
DEFAULT_MAX_MESSAGE_SIZE = 32 * 1024 * 1024

_HEADER = struct.Struct(">HHI")


class Frame(NamedTuple):
    type_id: int
    flags: int
    body: bytes


def encode_raw_frame(type_id: int, body: bytes, flags: int = 0) -> bytes:
    return _HEADER.pack(type_id, flags, len(body)) + body


def encode_frame(msg: Message, flags: int = 0, version: int = 6) -> bytes:
    return encode_raw_frame(msg.TYPE, encode_message(msg, version), flags)


class FrameDecoder:
    """Cuts a byte stream into frames; keeps a partial frame for the next ``feed``.

    A large frame arriving in many chunks is accumulated in a bytearray (linear
    cost) and only parsed once all of it is there.
    """

    __slots__ = ("_max", "_needed", "_partial")

    def __init__(self, max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE) -> None:
        self._partial = bytearray()
        self._needed = 0  # bytes the partial frame needs before it can be parsed
        self._max = max_message_size

    def feed(self, data: bytes) -> list[Frame]:
        if self._partial:
            self._partial += data
            if len(self._partial) < self._needed:
                return []
            buffer = bytes(self._partial)
            self._partial = bytearray()
        else:
            buffer = data
        frames: list[Frame] = []
        pos = 0
        size = len(buffer)
        unpack = _HEADER.unpack_from
        while size - pos >= HEADER_SIZE:
            type_id, flags, length = unpack(buffer, pos)
            if length > self._max:
                raise ProtocolError(
                    f"message of {length} bytes exceeds the limit of {self._max} bytes"
                )
            end = pos + HEADER_SIZE + length
            if end > size:
                self._needed = end - pos
                break
            frames.append(Frame(type_id, flags, buffer[pos + HEADER_SIZE : end]))
            pos = end
        else:
            self._needed = HEADER_SIZE
        if pos < size:
            self._partial = bytearray(buffer[pos:])
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._partial)

    @property
    def needed(self) -> int:
        """Size of the incomplete frame, header included, once its header is in."""
        return self._needed
