"""Minimal protobuf wire format: varints and length-delimited fields.

Only what the service protocol uses: wire type 0 (varint) and 2 (length-delimited);
fixed-width types are skipped when they appear as unknown fields.
"""

from __future__ import annotations

from restate_server.protocol.errors import ProtocolError

VARINT = 0
FIXED64 = 1
LENGTH_DELIMITED = 2
FIXED32 = 5

# One-byte varints are by far the most common (ids, flags, small lengths).
_SMALL = [bytes((i,)) for i in range(128)]


def encode_varint(value: int) -> bytes:
    if value < 128:
        if value < 0:
            value &= (1 << 64) - 1  # two's complement, as protobuf writes negative int64
        else:
            return _SMALL[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def decode_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """(value, new position)."""
    try:
        byte = buf[pos]
    except IndexError:
        raise ProtocolError("truncated varint") from None
    if byte < 0x80:
        return byte, pos + 1
    result = byte & 0x7F
    shift = 7
    pos += 1
    while True:
        try:
            byte = buf[pos]
        except IndexError:
            raise ProtocolError("truncated varint") from None
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            if shift == 63 and byte > 1:  # the 10th byte holds only bit 63
                raise ProtocolError("varint past 64 bits")
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtocolError("varint too long")


def tag(field_number: int, wire_type: int) -> bytes:
    return encode_varint((field_number << 3) | wire_type)


def length_delimited(field_tag: bytes, payload: bytes) -> bytes:
    return field_tag + encode_varint(len(payload)) + payload


def skip_field(buf: bytes, pos: int, wire_type: int) -> int:
    if wire_type == VARINT:
        return decode_varint(buf, pos)[1]
    if wire_type == LENGTH_DELIMITED:
        length, pos = decode_varint(buf, pos)
        end = pos + length
        if end > len(buf):
            raise ProtocolError("truncated length-delimited field")
        return end
    if wire_type == FIXED64:
        return pos + 8
    if wire_type == FIXED32:
        return pos + 4
    raise ProtocolError(f"unsupported wire type {wire_type}")
