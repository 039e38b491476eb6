"""The lock of a virtual-object / workflow key: who holds it, and how many wait.

Stored as the holder's invocation id followed by the number of invocations
queued in the key's inbox, so that freeing a key with an empty inbox needs no
scan of the inbox.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from restate_server.partition.context import ApplyContext
from restate_server.storage import keys
from restate_server.storage.records import Target

_COUNT = struct.Struct(">I")


class KeyLock(NamedTuple):
    holder: bytes
    queued: int


def lock_key(invocation_id: bytes, target: Target) -> bytes:
    assert target.key is not None
    return keys.key_lock(int.from_bytes(invocation_id[:8], "big"), target.service, target.key)


def read_lock(ctx: ApplyContext, key: bytes) -> KeyLock | None:
    raw = ctx.txn.get(key)
    if raw is None:
        return None
    return KeyLock(raw[:24], _COUNT.unpack_from(raw, 24)[0] if len(raw) >= 28 else 0)


def write_lock(ctx: ApplyContext, key: bytes, lock: KeyLock) -> None:
    ctx.txn.put(key, lock.holder + _COUNT.pack(lock.queued))
