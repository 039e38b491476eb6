"""The lock of a virtual-object / workflow key: who holds it, and how many wait.

Stored as the holder's invocation id, the number of invocations queued in the
key's inbox, and the inbox sequence number last taken out. Freeing a key with an
empty inbox needs no read of the inbox, and the next queued invocation is looked
up from the last position on (not over the deleted entries before it).
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from restate_server.partition.context import ApplyContext
from restate_server.storage import keys
from restate_server.storage.records import Target

_TAIL = struct.Struct(">IQ")


class KeyLock(NamedTuple):
    holder: bytes
    queued: int
    head: int = 0  # inbox sequence of the last invocation taken out of the inbox


def lock_key(invocation_id: bytes, target: Target) -> bytes:
    assert target.key is not None
    return keys.key_lock(int.from_bytes(invocation_id[:8], "big"), target.service, target.key)


def read_lock(ctx: ApplyContext, key: bytes) -> KeyLock | None:
    raw = ctx.txn.get(key)
    if raw is None:
        return None
    if len(raw) < 24 + _TAIL.size:
        return KeyLock(raw[:24], 0, 0)
    queued, head = _TAIL.unpack_from(raw, 24)
    return KeyLock(raw[:24], queued, head)


def write_lock(ctx: ApplyContext, key: bytes, lock: KeyLock) -> None:
    ctx.txn.put(key, lock.holder + _TAIL.pack(lock.queued, lock.head))
