"""A read-only view of the store at one point in time.

Readers that scan a lot (``/query``) read from a snapshot instead of the live store:
every table they touch shows the same instant, writes that land meanwhile stay
invisible, and it can be read from any thread. Take it through ``Committer.read`` so
that the instant is a durable one (nothing written but not yet synced is in it).

Point reads go through a RocksDB snapshot. Range reads cannot: rocksdict's snapshot
iterators ignore the snapshot (they read the live store; checked with rocksdict
0.3.29). A RocksDB iterator, though, sees the store as it was when the iterator was
created. So the ranges a reader will scan are named up front and their iterators are
opened together with the snapshot, all at the same instant. A range that was not named
is opened when it is first read (a later instant: only for readers that did not know
their ranges in advance).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import rocksdict

from restate_server.storage.active_index import FrozenIndex
from restate_server.storage.keys import ACTIVE_INVOCATION, prefix_end

Range = tuple[bytes, bytes]  # [start, end)


class StoreSnapshot:
    __slots__ = ("_active", "_db", "_items", "_snapshot", "_values")

    def __init__(
        self, db: Any, ranges: Iterable[Range] = (), active: FrozenIndex | None = None
    ) -> None:
        """Call where the instant must be taken (``Committer.read``); ``active``: the
        active-invocation index at the same instant (kept in memory, not in RocksDB)."""
        self._db = db
        self._snapshot = db.snapshot()
        self._active = active
        self._items: dict[Range, list[Any]] = {}
        self._values: dict[Range, list[Any]] = {}
        for start, end in ranges:
            if start[:1] == ACTIVE_INVOCATION:
                continue
            self._items.setdefault((start, end), []).append(self._open(db.items, start, end))
            self._values.setdefault((start, end), []).append(self._open(db.values, start, end))

    @staticmethod
    def _open(kind: Any, start: bytes, end: bytes) -> tuple[Any, Any]:
        # RocksDB keeps a pointer to the upper bound, not a copy: the options live as
        # long as their iterator
        options = rocksdict.ReadOptions()
        options.set_iterate_upper_bound(end)
        return options, kind(from_key=start, read_opt=options)

    def get(self, key: bytes) -> bytes | None:
        try:
            value: bytes = self._snapshot[key]
        except KeyError:
            return None
        except Exception as exc:  # rocksdict reports a missing key as a plain Exception
            if str(exc) == "key not found":
                return None
            raise
        return value

    def _take(self, opened: dict[Range, list[Any]], kind: Any, start: bytes, end: bytes) -> Any:
        ready = opened.get((start, end))
        if ready:
            return ready.pop()
        return self._open(kind, start, end)

    def items(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) for start <= key < end, in key order."""
        if start[:1] == ACTIVE_INVOCATION:
            yield from self._active.scan(start, end) if self._active is not None else ()
            return
        options, iterator = self._take(self._items, self._db.items, start, end)
        yield from iterator
        del options

    def values(self, start: bytes, end: bytes) -> Iterator[bytes]:
        """The values of start <= key < end, in key order (cheaper than ``items``)."""
        options, iterator = self._take(self._values, self._db.values, start, end)
        yield from iterator
        del options

    def items_with_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self.items(prefix, prefix_end(prefix))

    def release(self) -> None:
        """Let RocksDB drop what only this view still needed (also done when collected)."""
        self._snapshot = None
        self._items.clear()
        self._values.clear()
