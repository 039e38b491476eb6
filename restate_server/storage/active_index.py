"""The invocations that are not completed, in memory: ``keys.ACTIVE_INVOCATION`` keys.

Recovery and the invocation scans of ``/query`` need the invocations that are not
completed, which are usually few among many retained completed ones. The partition
writes an index entry (tag ``A`` + invocation id -> its status) in the same batch as the
status record when the status changes, and removes it on completion. Those entries are
not written to RocksDB: the store applies them to this map once the batch is durable,
on the committer thread, so the map always matches the synced statuses; snapshots taken
there (``Committer.read``) copy it at the same instant. At open it is built from the
stored statuses (the status is the record's first field: ~0.7 us per record).

Kept in memory rather than on disk because persisting it cost 2-4 % CPU per
short-lived invocation (a put and a tombstone each, and their compaction), measured in
``benchmarks/README.md``.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable

import msgspec

from restate_server.storage import keys

TAG = keys.ACTIVE_INVOCATION[0]


class _StatusOnly(msgspec.Struct, array_like=True, gc=False):
    """A status record's first field (array-like structs ignore the trailing ones)."""

    status: str


_STATUS_ONLY = msgspec.msgpack.Decoder(_StatusOnly)
_COMPLETED = b"completed"


class ActiveIndex:
    __slots__ = ("_entries", "_lock")

    def __init__(self, entries: dict[bytes, bytes] | None = None) -> None:
        self._entries: dict[bytes, bytes] = entries or {}
        # written on the committer thread, read from the loop (recovery) and from
        # snapshots: copies and changes are made under the lock
        self._lock = threading.Lock()

    @classmethod
    def of_statuses(cls, records: Iterable[tuple[bytes, bytes]]) -> ActiveIndex:
        """From (status key, record) pairs."""
        entries: dict[bytes, bytes] = {}
        tag = keys.ACTIVE_INVOCATION
        for key, raw in records:
            status = _STATUS_ONLY.decode(raw).status.encode()
            if status != _COMPLETED:
                entries[tag + key[1:]] = status
        return cls(entries)

    def apply(self, changes: list[tuple[bytes, bytes | None]]) -> None:
        """Index puts (bytes) and deletes (None), once their batch is durable."""
        entries = self._entries
        with self._lock:
            for key, value in changes:
                if value is None:
                    entries.pop(key, None)
                else:
                    entries[key] = value

    def __len__(self) -> int:
        return len(self._entries)

    def frozen(self) -> FrozenIndex:
        with self._lock:
            return FrozenIndex(sorted(self._entries.items()))

    def scan(self, start: bytes, end: bytes) -> list[tuple[bytes, bytes]]:
        """(key, status) for start <= key < end, in key order."""
        with self._lock:
            found = [item for item in self._entries.items() if start <= item[0] < end]
        found.sort()
        return found


class FrozenIndex:
    """The index at one instant, sorted, for range reads."""

    __slots__ = ("_items", "_keys")

    def __init__(self, items: list[tuple[bytes, bytes]]) -> None:
        self._items = items
        self._keys = [key for key, _ in items]

    def scan(self, start: bytes, end: bytes) -> list[tuple[bytes, bytes]]:
        low = bisect.bisect_left(self._keys, start)
        high = bisect.bisect_left(self._keys, end, low)
        return self._items[low:high]
