"""Huffman decoding of HPACK strings (RFC 7541 §5.2, Appendix B), a byte at a time.

The code is walked as a tree; each (tree node, input byte) pair is computed once, when
first met, into the node it leads to and the symbols it completes, so decoding a string
costs one dictionary lookup per byte. Only the pairs real strings use are ever built
(paths and keys touch a few hundred), not all 65,536.
"""

from __future__ import annotations

from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

_EOS = 256


def _build_tree() -> tuple[list[list[int]], list[bool]]:
    """Children per node (a node index, or ``-(symbol + 1)`` for a leaf) and whether a
    string may end at the node (reached by fewer than 8 one-bits: EOS's prefix, §5.2)."""
    children: list[list[int]] = [[0, 0]]
    ones_only = [True]
    depth = [0]
    for symbol, (code, length) in enumerate(zip(REQUEST_CODES, REQUEST_CODES_LENGTH, strict=True)):
        node = 0
        for shift in range(length - 1, -1, -1):
            bit = (code >> shift) & 1
            if shift == 0:
                children[node][bit] = -(symbol + 1)
                break
            child = children[node][bit]
            if child <= 0:  # 0 is the root: no edge leads back to it
                child = len(children)
                children.append([0, 0])
                ones_only.append(ones_only[node] and bit == 1)
                depth.append(depth[node] + 1)
                children[node][bit] = child
            node = child
    may_end = [ones and d < 8 for ones, d in zip(ones_only, depth, strict=True)]
    return children, may_end


_CHILDREN, _MAY_END = _build_tree()
_steps: dict[int, tuple[int, bytes]] = {}


class HuffmanError(ValueError):
    pass


def _step(start: int, byte: int) -> tuple[int, bytes]:
    node = start
    out = bytearray()
    children = _CHILDREN
    for shift in range(7, -1, -1):
        nxt = children[node][(byte >> shift) & 1]
        if nxt < 0:
            symbol = -nxt - 1
            if symbol == _EOS:
                raise HuffmanError("EOS in a Huffman string")
            out.append(symbol)
            node = 0
        else:
            node = nxt
    step = (node, bytes(out))
    _steps[start << 8 | byte] = step
    return step


def decode_huffman(data: bytes) -> bytes:
    steps = _steps
    node = 0
    parts: list[bytes] = []
    for byte in data:
        step = steps.get(node << 8 | byte)
        if step is None:
            step = _step(node, byte)
        node, out = step
        if out:
            parts.append(out)
    if not _MAY_END[node]:
        raise HuffmanError("a Huffman string that does not end on its padding")
    return b"".join(parts)
