"""A minimal HPACK encoder for request headers.

Requests to SDK endpoints carry a handful of headers, most of them different per
invocation (ids, keys), so a dynamic table buys nothing. Everything is written as
"literal without indexing" (names from the static table when they are there), or as
a fully indexed static entry; no Huffman coding. Decoders of every peer accept this,
and it costs a few string concatenations instead of a table search per header.
"""

from __future__ import annotations

# RFC 7541 Appendix A: fully indexed static entries we use
_INDEXED = {
    (":method", "GET"): b"\x82",
    (":method", "POST"): b"\x83",
    (":scheme", "http"): b"\x86",
    (":scheme", "https"): b"\x87",
}
# static table indices of header names
_NAME_INDEX = {
    ":authority": 1,
    ":method": 2,
    ":path": 4,
    ":scheme": 6,
    "accept": 19,
    "content-length": 28,
    "content-type": 31,
    "user-agent": 58,
}


def _integer(value: int, prefix_bits: int, first_byte: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first_byte | value,))
    out = bytearray((first_byte | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return _integer(len(raw), 7, 0) + raw


def encode_header(name: str, value: str) -> bytes:
    indexed = _INDEXED.get((name, value))
    if indexed is not None:
        return indexed
    index = _NAME_INDEX.get(name)
    if index is not None:
        return _integer(index, 4, 0x00) + _string(value)
    return b"\x00" + _string(name) + _string(value)


def encode_headers(headers: list[tuple[str, str]]) -> bytes:
    return b"".join(encode_header(name, value) for name, value in headers)
