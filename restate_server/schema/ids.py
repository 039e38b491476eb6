"""Deployment ids (``dp_1`` + 22 base62 chars) and the id parse errors the admin API shows.

Same scheme as the real server: ``<prefix>_<version><payload>``, version ``1``, the
u128 byte-swapped and written in base62 (alphabet ``0-9a-zA-Z``), left-padded to 22.
The error texts are the real server's (``bad format``, ``unrecognized codec version``...).
"""

from __future__ import annotations

import secrets

from restate_server.protocol.errors import InvalidIdError
from restate_server.protocol.ids import b62_decode, b62_encode

_U128_WIDTH = 22
_U64_WIDTH = 11
_KNOWN_PREFIXES = ("inv", "dp", "sub", "prom", "sign", "snap", "mut", "vq")


class IdError(ValueError):
    """Why an id string does not parse; ``str()`` is the real server's reason text."""


def _encode_u128(value: int) -> str:
    swapped = int.from_bytes(value.to_bytes(16, "big"), "little")
    return b62_encode(swapped, _U128_WIDTH)


def new_deployment_id() -> str:
    return "dp_1" + _encode_u128(int.from_bytes(secrets.token_bytes(16), "big"))


def _decode_base62(text: str, max_bits: int) -> int:
    try:
        value = b62_decode(text)
    except InvalidIdError:
        raise IdError("base62 decode error") from None
    if value >> max_bits:
        raise IdError("base62 decode error")
    return value


def _check(text: str, expected_prefix: str, widths: tuple[int, ...]) -> None:
    if not text:
        raise IdError("bad length")
    prefix, sep, rest = text.partition("_")
    if not sep:
        raise IdError("bad format")
    if prefix not in _KNOWN_PREFIXES:
        raise IdError(f"unrecognized resource type: {prefix}")
    if not rest:
        raise IdError("bad length")
    if rest[0] != "1":
        raise IdError("unrecognized codec version")
    if prefix != expected_prefix:
        raise IdError("id doesn't match the expected type")
    payload = rest[1:]
    if len(payload) != sum(widths):
        raise IdError("bad length")
    offset = 0
    for width in widths:
        _decode_base62(payload[offset : offset + width], 64 if width == _U64_WIDTH else 128)
        offset += width


def check_deployment_id(text: str) -> None:
    """Raise ``IdError`` unless ``text`` is a well-formed deployment id."""
    _check(text, "dp", (_U128_WIDTH,))


def check_invocation_id(text: str) -> None:
    """Raise ``IdError`` unless ``text`` is a well-formed invocation id."""
    _check(text, "inv", (_U64_WIDTH, _U128_WIDTH))


def check_subscription_id(text: str) -> None:
    _check(text, "sub", (_U128_WIDTH,))
