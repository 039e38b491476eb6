"""Identifiers: invocation ids, awakeable (signal) ids, idempotency keys.

An invocation id is 24 bytes: the partition key (u64, big-endian) and a uuid
(u128, big-endian). Its string form is ``inv_1`` + base62 of the byte-swapped
partition key (11 chars) + base62 of the byte-swapped uuid (22 chars).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import time

import msgspec
import xxhash

from restate_server.protocol.errors import InvalidIdError

B62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_B62_INDEX = {c: i for i, c in enumerate(B62)}
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# every value below 62**2 as its two base62 digits: encoding takes two digits a step
_B62_PAIRS = [a + b for a in B62 for b in B62]


def b62_encode(number: int, width: int) -> str:
    pairs = []
    while number:
        number, rem = divmod(number, 3844)
        pairs.append(_B62_PAIRS[rem])
    return "".join(reversed(pairs)).lstrip("0").rjust(width, "0")


def b62_decode(text: str) -> int:
    number = 0
    for char in text:
        digit = _B62_INDEX.get(char)
        if digit is None:
            raise InvalidIdError("bad format")
        number = number * 62 + digit
    return number


def _split_prefixed(text: str, prefix: str) -> str:
    """The payload after ``<prefix>_1``, with the real server's error wording."""
    head, sep, rest = text.partition("_")
    if not sep or head != prefix:
        raise InvalidIdError("bad format")
    if not rest or rest[0] != "1":
        raise InvalidIdError("unrecognized codec version")
    return rest[1:]


class InvocationId(msgspec.Struct, frozen=True, gc=False):
    partition_key: int
    uuid: bytes

    def to_bytes(self) -> bytes:
        return self.partition_key.to_bytes(8, "big") + self.uuid

    @classmethod
    def from_bytes(cls, raw: bytes) -> InvocationId:
        if len(raw) != 24:
            raise InvalidIdError("bad format")
        return cls(int.from_bytes(raw[:8], "big"), bytes(raw[8:]))

    def to_str(self) -> str:
        return (
            "inv_1"
            + b62_encode(int.from_bytes(self.partition_key.to_bytes(8, "big"), "little"), 11)
            + b62_encode(int.from_bytes(self.uuid, "little"), 22)
        )

    def __str__(self) -> str:
        return self.to_str()

    @classmethod
    def from_str(cls, text: str) -> InvocationId:
        payload = _split_prefixed(text, "inv")
        if len(payload) != 33:
            raise InvalidIdError("bad format")
        pk_swapped = b62_decode(payload[:11])
        uuid_swapped = b62_decode(payload[11:])
        if pk_swapped >= 1 << 64 or uuid_swapped >= 1 << 128:
            raise InvalidIdError("bad format")
        partition_key = int.from_bytes(pk_swapped.to_bytes(8, "little"), "big")
        return cls(partition_key, uuid_swapped.to_bytes(16, "little"))


@functools.lru_cache(maxsize=8192)
def invocation_id_str(raw: bytes) -> str:
    """String form of raw id bytes; cached, as one invocation is named many times."""
    return InvocationId.from_bytes(raw).to_str()


# ---- partition keys


def partition_key_for_key(service_name: str, key: str) -> int:
    """All invocations on one object/workflow key share this partition key.

    Only the key is hashed (as the real server does): the service name does not
    move a key to another partition.
    """
    return xxhash.xxh3_64_intdigest(key.encode())


def random_partition_key() -> int:
    return int.from_bytes(os.urandom(8), "big")


# ---- generating invocation ids


def _ulid_bytes(now_ms: int) -> bytes:
    return (now_ms & ((1 << 48) - 1)).to_bytes(6, "big") + os.urandom(10)


def new_invocation_id(partition_key: int, now_ms: int | None = None) -> InvocationId:
    """A fresh id: the uuid is a ULID (48-bit ms timestamp + 80 random bits)."""
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    return InvocationId(partition_key, _ulid_bytes(now_ms))


def _sha_uuid(*parts: str) -> bytes:
    digest = hashlib.sha256(",".join(parts).encode()).digest()
    return digest[:16]


def workflow_invocation_id(service: str, key: str) -> InvocationId:
    """The one id of a workflow key's ``run`` invocation (stable across servers)."""
    return InvocationId(partition_key_for_key(service, key), _sha_uuid("wf", service, key))


def idempotent_invocation_id(
    service: str, key: str | None, handler: str, idempotency_key: str
) -> InvocationId:
    """Stable id of an idempotent request: the same target and key give the same id.

    Keyed targets use the key's partition key; unkeyed ones a hash of the
    idempotency key, so repeats meet in the same partition.
    """
    if key is None:
        uuid = _sha_uuid("ik", service, handler, idempotency_key)
        partition_key = xxhash.xxh3_64_intdigest(idempotency_key.encode() + service.encode())
    else:
        uuid = _sha_uuid("ik", service, key, handler, idempotency_key)
        partition_key = partition_key_for_key(service, key)
    return InvocationId(partition_key, uuid)


# every 10-bit value as its two Crockford characters
_CROCKFORD_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]


def new_ulid_string(now_ms: int | None = None) -> str:
    """26-character Crockford base32 ULID (generated idempotency keys)."""
    if now_ms is None:
        now_ms = int(time.time() * 1000)
    number = int.from_bytes(_ulid_bytes(now_ms), "big")
    pairs = _CROCKFORD_PAIRS
    # 128 bits: the first character holds the top 3 bits, then 25 characters of 5 bits
    # (read in pairs of characters, with 5 zero bits appended to make 13 whole pairs)
    rest = (number & ((1 << 125) - 1)) << 5
    tail = "".join([pairs[(rest >> shift) & 0x3FF] for shift in range(120, -1, -10)])
    return _CROCKFORD[number >> 125] + tail[:25]


# ---- awakeables (signals)


def awakeable_id(invocation_id: InvocationId, signal_index: int) -> str:
    raw = invocation_id.to_bytes() + signal_index.to_bytes(4, "big")
    return "sign_1" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def parse_awakeable_id(text: str) -> tuple[InvocationId, str, int]:
    """(invocation id, "sign" | "prom", signal or entry index)."""
    head, sep, _rest = text.partition("_")
    if not sep or head not in ("sign", "prom"):
        raise InvalidIdError("bad format")
    payload = _split_prefixed(text, head)
    padded = payload + "=" * (-len(payload) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded.encode())
    except (ValueError, TypeError) as exc:
        raise InvalidIdError("bad format") from exc
    if len(raw) != 28:
        raise InvalidIdError("bad format")
    return InvocationId.from_bytes(raw[:24]), head, int.from_bytes(raw[24:], "big")
