"""HTTP/2 framing shared by our client and server connections (RFC 9113 §4, §6)."""

from __future__ import annotations

import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE = 0, 1, 2, 3, 4, 5
PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 6, 7, 8, 9

FLAG_END_STREAM = 0x1
FLAG_ACK = 0x1
FLAG_END_HEADERS = 0x4
FLAG_PADDED = 0x8
FLAG_PRIORITY = 0x20

SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_ENABLE_PUSH = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6

ERROR_NO_ERROR = 0x0
ERROR_PROTOCOL = 0x1
ERROR_INTERNAL = 0x2
ERROR_FLOW_CONTROL = 0x3
ERROR_STREAM_CLOSED = 0x5
ERROR_FRAME_SIZE = 0x6
ERROR_REFUSED_STREAM = 0x7
ERROR_CANCEL = 0x8
ERROR_COMPRESSION = 0x9
ERROR_ENHANCE_YOUR_CALM = 0xB

DEFAULT_WINDOW = 65_535
DEFAULT_MAX_FRAME = 16_384

FRAME_HEADER = struct.Struct(">HBBBI")  # length as u16 + u8, type, flags, stream id
U32 = struct.Struct(">I")
SETTING = struct.Struct(">HI")


def frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    length = len(payload)
    return FRAME_HEADER.pack(length >> 8, length & 0xFF, frame_type, flags, stream_id) + payload


def settings_payload(pairs: tuple[tuple[int, int], ...]) -> bytes:
    return b"".join(SETTING.pack(key, value) for key, value in pairs)


def header_block(flags: int, payload: bytes) -> bytes:
    """The header block fragment of a HEADERS frame, without padding and priority."""
    start = 0
    end = len(payload)
    if flags & FLAG_PADDED:
        if not payload or payload[0] >= len(payload):
            raise ValueError("padding longer than the frame")
        end -= payload[0]
        start = 1
    if flags & FLAG_PRIORITY:
        start += 5
    if start > end:
        raise ValueError("HEADERS frame too short for its flags")
    return payload[start:end]
