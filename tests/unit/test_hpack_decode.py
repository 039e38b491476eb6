"""Our HPACK decoder (RFC 7541) against the ``hpack`` package's encoder: any header
lists, Huffman or not, indexed or never indexed, across table size changes and
evictions, decode to what was encoded; broken blocks and oversized lists are refused."""

from __future__ import annotations

import contextlib

import hpack
import pytest
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hypothesis import given, settings
from hypothesis import strategies as st

from restate_server.http2.hpack_decode import HeaderListTooLarge, HpackDecoder, HpackError
from restate_server.http2.huffman import HuffmanError, decode_huffman

_names = st.sampled_from([b":path", b"content-type", b"x-key", b"accept", b"cookie"]) | st.binary(
    min_size=1, max_size=20
)
_header = st.tuples(_names, st.binary(max_size=60))
_block = st.lists(st.tuples(_header, st.booleans()), max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    blocks=st.lists(_block, min_size=1, max_size=8),
    huffman=st.booleans(),
    table_sizes=st.lists(st.integers(0, 4096), max_size=8),
)
def test_decodes_what_the_reference_encoder_wrote(
    blocks: list[list[tuple[tuple[bytes, bytes], bool]]],
    huffman: bool,
    table_sizes: list[int],
) -> None:
    encoder = hpack.Encoder()
    decoder = HpackDecoder(max_header_list_size=1 << 20)
    for index, block in enumerate(blocks):
        if index < len(table_sizes):
            encoder.header_table_size = table_sizes[index]  # emits a size update
        fields = [
            hpack.NeverIndexedHeaderTuple(*header) if sensitive else header
            for header, sensitive in block
        ]
        decoded, _ = decoder.decode(encoder.encode(fields, huffman=huffman))
        assert decoded == [header for header, _ in block]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=100))
def test_huffman_strings_round_trip(raw: bytes) -> None:
    encoder = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
    assert decode_huffman(encoder.encode(raw)) == raw


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_blocks_decode_or_fail_cleanly(block: bytes) -> None:
    with contextlib.suppress(HpackError):  # anything else would be a bug
        HpackDecoder(max_header_list_size=4096).decode(block)


def test_a_block_that_only_reads_the_table_leaves_it_unchanged() -> None:
    encoder = hpack.Encoder()
    decoder = HpackDecoder(max_header_list_size=4096)
    first = encoder.encode([(b"x-key", b"abc")])
    assert decoder.decode(first) == ([(b"x-key", b"abc")], True)
    again = encoder.encode([(b"x-key", b"abc")])  # now an indexed field
    assert decoder.decode(again) == ([(b"x-key", b"abc")], False)


@pytest.mark.parametrize(
    "block",
    [
        b"\x80",  # index 0
        b"\xbf\x7f",  # an index past the table
        b"\x00\x85ab",  # a string longer than the block
        b"\xff\xff\xff\xff\xff\xff\x01",  # an integer too large
        b"\x82\x3f\xe1\x1f",  # a size update after a field
        b"\x3f\xe2\x1f",  # a size update over the allowed 4096
    ],
)
def test_broken_blocks_are_refused(block: bytes) -> None:
    with pytest.raises(HpackError):
        HpackDecoder(max_header_list_size=4096).decode(block)


def test_an_oversized_list_is_refused_while_decoding() -> None:
    block = hpack.Encoder().encode([(b"x-a", b"v" * 500), (b"x-b", b"v" * 600)])
    with pytest.raises(HeaderListTooLarge):
        HpackDecoder(max_header_list_size=1000).decode(block)


def test_huffman_padding_rules() -> None:
    for bad in (b"\xff\xff\xff\xff", b"\x1f\xff", b"\x00"):
        with pytest.raises(HuffmanError):
            decode_huffman(bad)
