"""Key encodings of every table.

All keys start with a one-byte table tag. Keys of per-invocation and per-key
tables continue with the 8-byte big-endian partition key, so that a partition
(a contiguous partition-key range) owns a contiguous key range in every table
and can later be moved to its own store without rewriting keys. Variable-length
parts are length-prefixed (u16) so that prefixes never collide.
"""

from __future__ import annotations

import struct

INVOCATION_STATUS = b"S"
# an index of the invocations that are not completed: id -> their status (UTF-8)
ACTIVE_INVOCATION = b"A"
JOURNAL = b"J"
STATE = b"V"
KEY_LOCK = b"L"
INBOX = b"I"
TIMERS = b"T"
PROMISES = b"P"
OUTBOX = b"O"
DEDUP = b"E"
FSM = b"F"
METADATA = b"M"

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def _lp(text: str) -> bytes:
    raw = text.encode()
    return _U16.pack(len(raw)) + raw


def _pk(partition_key: int) -> bytes:
    return _U64.pack(partition_key)


def invocation_status(invocation_id: bytes) -> bytes:
    return INVOCATION_STATUS + invocation_id


def active_invocation(invocation_id: bytes) -> bytes:
    return ACTIVE_INVOCATION + invocation_id


def journal_prefix(invocation_id: bytes) -> bytes:
    return JOURNAL + invocation_id


def journal_entry(invocation_id: bytes, index: int) -> bytes:
    return JOURNAL + invocation_id + _U32.pack(index)


def journal_index_of(key: bytes) -> int:
    return _U32.unpack_from(key, len(key) - 4)[0]


def service_key_prefix(partition_key: int, service: str, key: str) -> bytes:
    """Common part of keys scoped to one virtual-object / workflow instance."""
    return _pk(partition_key) + _lp(service) + _lp(key)


def state_prefix(partition_key: int, service: str, key: str) -> bytes:
    return STATE + service_key_prefix(partition_key, service, key)


def state_entry(partition_key: int, service: str, key: str, state_key: bytes) -> bytes:
    return state_prefix(partition_key, service, key) + state_key


def key_lock(partition_key: int, service: str, key: str) -> bytes:
    return KEY_LOCK + service_key_prefix(partition_key, service, key)


def inbox_prefix(partition_key: int, service: str, key: str) -> bytes:
    return INBOX + service_key_prefix(partition_key, service, key)


def inbox_entry(partition_key: int, service: str, key: str, sequence: int) -> bytes:
    return inbox_prefix(partition_key, service, key) + _U64.pack(sequence)


def promise_prefix(partition_key: int, service: str, key: str) -> bytes:
    return PROMISES + service_key_prefix(partition_key, service, key)


def promise(partition_key: int, service: str, key: str, name: str) -> bytes:
    return promise_prefix(partition_key, service, key) + name.encode()


def timer_prefix(partition_id: int) -> bytes:
    return TIMERS + _U16.pack(partition_id)


def timer(partition_id: int, wake_up_ms: int, sequence: int) -> bytes:
    """Timers sort by due time within a partition; the sequence keeps keys unique."""
    return TIMERS + _U16.pack(partition_id) + _U64.pack(wake_up_ms) + _U64.pack(sequence)


def timer_due_of(key: bytes) -> int:
    return _U64.unpack_from(key, 3)[0]


def outbox_prefix(partition_id: int) -> bytes:
    return OUTBOX + _U16.pack(partition_id)


def outbox(partition_id: int, sequence: int) -> bytes:
    return outbox_prefix(partition_id) + _U64.pack(sequence)


def dedup(partition_id: int, producer: bytes) -> bytes:
    """Highest sequence number applied from one producer (another partition's outbox)."""
    return DEDUP + _U16.pack(partition_id) + producer


def fsm_variable(partition_id: int, name: str) -> bytes:
    return FSM + _U16.pack(partition_id) + name.encode()


def metadata(name: str) -> bytes:
    return METADATA + name.encode()


def prefix_end(prefix: bytes) -> bytes:
    """Smallest key greater than every key starting with ``prefix``."""
    raw = bytearray(prefix)
    while raw:
        if raw[-1] != 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return b"\xff" * (len(prefix) + 1)


def encode_u64(value: int) -> bytes:
    return _U64.pack(value)


def decode_u64(raw: bytes) -> int:
    return _U64.unpack(raw)[0]
