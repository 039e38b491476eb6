"""The Restate service protocol: framing, messages, ids, versions. Pure: bytes in, objects out.

Shared by the server and by our SDK.
"""

from restate_server.protocol.errors import InvalidIdError, ProtocolError
from restate_server.protocol.framing import (
    REQUESTED_ACK,
    Frame,
    FrameDecoder,
    encode_frame,
    encode_raw_frame,
)
from restate_server.protocol.ids import InvocationId
from restate_server.protocol.messages import MESSAGE_TYPES, decode_message, encode_message

__all__ = [
    "MESSAGE_TYPES",
    "REQUESTED_ACK",
    "Frame",
    "FrameDecoder",
    "InvalidIdError",
    "InvocationId",
    "ProtocolError",
    "decode_message",
    "encode_frame",
    "encode_message",
    "encode_raw_frame",
]
