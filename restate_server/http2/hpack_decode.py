"""An HPACK decoder (RFC 7541) for request headers on the server side of HTTP/2.

The ``hpack`` package decodes correctly but spends about 4 µs per header field on
generic machinery (logging calls, tuple subclasses), which made an HTTP/2 greet cost a
fifth more server CPU than an HTTP/1.1 one. This decoder handles the representations
directly and keeps the header list size bound while it decodes, so an oversized list is
refused before it is built. Huffman strings are decoded a byte at a time (``huffman``).
"""

from __future__ import annotations

from collections import deque

from hpack.table import HeaderTable

from restate_server.http2.huffman import decode_huffman

Header = tuple[bytes, bytes]

_STATIC: tuple[Header, ...] = HeaderTable.STATIC_TABLE
_STATIC_LEN = len(_STATIC)
ENTRY_OVERHEAD = 32  # RFC 7541 §4.1: every entry counts its name, value and 32 bytes


class HpackError(ValueError):
    """The block cannot be decoded: a COMPRESSION_ERROR for the whole connection."""


class HeaderListTooLarge(HpackError):
    """The decoded list passes the limit (name + value + 32 per header)."""


class HpackDecoder:
    __slots__ = ("_entries", "_max_list", "_max_size", "_size", "_size_limit")

    def __init__(self, max_header_list_size: int, table_size_limit: int = 4096) -> None:
        self._entries: deque[Header] = deque()  # newest first
        self._size = 0
        self._size_limit = table_size_limit  # what our SETTINGS allow (4096 by default)
        self._max_size = table_size_limit  # what the encoder chose, up to the limit
        self._max_list = max_header_list_size

    def decode(self, block: bytes) -> tuple[list[Header], bool]:
        """The headers of ``block`` and whether it changed the dynamic table."""
        headers: list[Header] = []
        list_size = 0
        changed = False
        pos = 0
        end = len(block)
        while pos < end:
            byte = block[pos]
            if byte & 0x80:  # indexed field
                if byte != 0xFF:  # the index fits in the byte
                    pos += 1
                    index = byte & 0x7F
                    header = _STATIC[index - 1] if 0 < index <= _STATIC_LEN else self._entry(index)
                else:
                    index, pos = _integer(block, pos, 7)
                    header = self._entry(index)
            elif byte & 0x40:  # literal, added to the table
                header, pos = self._literal(block, pos, 6)
                self._add(header)
                changed = True
            elif byte & 0x20:  # dynamic table size update, only before the first field
                if headers:
                    raise HpackError("table size update after a header field")
                size, pos = _integer(block, pos, 5)
                if size > self._size_limit:
                    raise HpackError(f"table size {size} over the allowed {self._size_limit}")
                self._max_size = size
                self._evict()
                changed = True
                continue
            else:  # literal without indexing (0x00) or never indexed (0x10)
                header, pos = self._literal(block, pos, 4)
            list_size += len(header[0]) + len(header[1]) + ENTRY_OVERHEAD
            if list_size > self._max_list:
                raise HeaderListTooLarge(f"header list over {self._max_list} bytes")
            headers.append(header)
        return headers, changed

    def _entry(self, index: int) -> Header:
        if 0 < index <= _STATIC_LEN:
            return _STATIC[index - 1]
        dynamic = index - _STATIC_LEN - 1
        if 0 <= dynamic < len(self._entries):
            return self._entries[dynamic]
        raise HpackError(f"header index {index} out of range")

    def _literal(self, block: bytes, pos: int, prefix_bits: int) -> tuple[Header, int]:
        index, pos = _integer(block, pos, prefix_bits)
        if index:
            name = self._entry(index)[0]
        else:
            name, pos = _string(block, pos)
        value, pos = _string(block, pos)
        return (name, value), pos

    def _add(self, header: Header) -> None:
        size = len(header[0]) + len(header[1]) + ENTRY_OVERHEAD
        if size > self._max_size:  # §4.4: an entry larger than the table empties it
            self._entries.clear()
            self._size = 0
            return
        self._entries.appendleft(header)
        self._size += size
        self._evict()

    def _evict(self) -> None:
        entries = self._entries
        while self._size > self._max_size:
            name, value = entries.pop()
            self._size -= len(name) + len(value) + ENTRY_OVERHEAD


def _integer(block: bytes, pos: int, prefix_bits: int) -> tuple[int, int]:
    mask = (1 << prefix_bits) - 1
    value = block[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    end = len(block)
    while True:
        if pos >= end:
            raise HpackError("truncated integer")
        byte = block[pos]
        pos += 1
        value += (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 28:  # no length or index here needs more than 2^28
            raise HpackError("integer too large")


def _string(block: bytes, pos: int) -> tuple[bytes, int]:
    if pos >= len(block):
        raise HpackError("truncated string")
    huffman = block[pos] & 0x80
    length, pos = _integer(block, pos, 7)
    end = pos + length
    if end > len(block):
        raise HpackError("truncated string")
    raw = block[pos:end]
    if huffman:
        try:
            raw = decode_huffman(raw)
        except Exception as exc:  # hpack raises its own decoding error
            raise HpackError(f"bad Huffman string: {exc}") from exc
    return raw, end
