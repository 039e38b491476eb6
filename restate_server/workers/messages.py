"""What processes of one server say to each other over the fabric.

Every message is a msgspec struct, encoded as a msgpack array (tag first) and framed
with a 4-byte big-endian length. Commands and answers travel as the same structs the
partitions use in one process.
"""

from __future__ import annotations

import struct

import msgspec

from restate_server.partition.actions import CommandReply, IngressReply, IngressSendAck
from restate_server.partition.commands import Command


class Submit(msgspec.Struct, tag="s", array_like=True):
    """Run ``command`` on the receiver's partition ``partition_id``.

    ``request_id``: a waiter of the sender; the partition's answer for it comes back as
    ``Answer``. ``done``: a token the receiver sends back as ``Done`` once the command's
    effects are committed (a durable hand-over, e.g. of an outbox entry)."""

    partition_id: int
    command: Command
    request_id: int | None = None
    done: int | None = None


class Answer(msgspec.Struct, tag="a", array_like=True):
    answer: IngressReply | IngressSendAck | CommandReply


class Done(msgspec.Struct, tag="d", array_like=True):
    token: int


class Call(msgspec.Struct, tag="c", array_like=True):
    """A request to the receiving process itself (not to a partition): a schema
    update, a metrics scrape, a query scan. Answered by ``Result`` with the token."""

    token: int
    method: str
    payload: bytes = b""


class Result(msgspec.Struct, tag="r", array_like=True):
    token: int
    payload: bytes = b""
    error: str | None = None


Message = Submit | Answer | Done | Call | Result

FRAME_HEADER = struct.Struct(">I")
# a frame larger than this is a bug or an attack: the connection is dropped
MAX_FRAME = 256 * 1024 * 1024

encoder = msgspec.msgpack.Encoder()
decoder = msgspec.msgpack.Decoder(Message)


def append_frame(buffer: bytearray, message: Message) -> None:
    """Encode ``message`` at the end of ``buffer``, with its length in front."""
    start = len(buffer)
    buffer.extend(b"\0\0\0\0")
    encoder.encode_into(message, buffer, start + 4)
    FRAME_HEADER.pack_into(buffer, start, len(buffer) - start - 4)


def split_frames(buffer: bytearray) -> list[Message]:
    """Decode the whole frames at the start of ``buffer`` and remove them from it."""
    messages: list[Message] = []
    offset = 0
    size = len(buffer)
    view = memoryview(buffer)
    try:
        while size - offset >= 4:
            (length,) = FRAME_HEADER.unpack_from(buffer, offset)
            if length > MAX_FRAME:
                raise ValueError(f"fabric frame of {length} bytes")
            end = offset + 4 + length
            if end > size:
                break
            messages.append(decoder.decode(view[offset + 4 : end]))
            offset = end
    finally:
        view.release()
    if offset:
        del buffer[:offset]
    return messages
