"""Read-your-writes transactions over the store and not-yet-committed batches.

The partition applies a group of commands to a :class:`Transaction`, hands its
writes to the committer and may start the next group before the first one is
durable. Reads of the next group must see the earlier, still in-flight writes,
so a transaction reads through its own writes, then the in-flight layers
(newest first), then the store.
"""

from __future__ import annotations

from collections.abc import Sequence

from restate_server.storage.db import Store
from restate_server.storage.keys import prefix_end

Writes = dict[bytes, bytes | None]


class Transaction:
    __slots__ = ("_layers", "_store", "_undo", "writes")

    def __init__(self, store: Store, in_flight: Sequence[Writes] = ()) -> None:
        self._store = store
        # newest first
        self._layers = list(reversed(in_flight))
        self.writes: Writes = {}
        self._undo: dict[bytes, tuple[bool, bytes | None]] | None = None

    def get(self, key: bytes) -> bytes | None:
        writes = self.writes
        if key in writes:
            return writes[key]
        for layer in self._layers:
            if key in layer:
                return layer[key]
        return self._store.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        if self._undo is not None and key not in self._undo:
            self._remember(key)
        self.writes[key] = value

    def delete(self, key: bytes) -> None:
        if self._undo is not None and key not in self._undo:
            self._remember(key)
        self.writes[key] = None

    # ---- savepoints: undo one command's writes if applying it raised

    def savepoint(self) -> None:
        self._undo = {}

    def release(self) -> None:
        self._undo = None

    def rollback(self) -> None:
        undo, self._undo = self._undo or {}, None
        for key, (existed, value) in undo.items():
            if existed:
                self.writes[key] = value
            else:
                del self.writes[key]

    def _remember(self, key: bytes) -> None:
        assert self._undo is not None
        if key in self.writes:
            self._undo[key] = (True, self.writes[key])
        else:
            self._undo[key] = (False, None)

    def scan_prefix(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        """All live (key, value) pairs under ``prefix``, in key order."""
        return self.scan_range(prefix, prefix_end(prefix))

    def scan_range(self, prefix: bytes, end: bytes) -> list[tuple[bytes, bytes]]:
        """All live (key, value) pairs with prefix <= key < end, in key order."""
        merged: dict[bytes, bytes | None] = dict(self._store.scan_range(prefix, end))
        for layer in reversed(self._layers):
            _overlay(merged, layer, prefix, end)
        _overlay(merged, self.writes, prefix, end)
        return sorted((k, v) for k, v in merged.items() if v is not None)

    def first_in_prefix(self, prefix: bytes) -> tuple[bytes, bytes] | None:
        """The smallest live (key, value) under ``prefix`` without reading the rest."""
        return self.first_in_range(prefix, prefix_end(prefix))

    def first_in_range(self, prefix: bytes, end: bytes) -> tuple[bytes, bytes] | None:
        """The smallest live (key, value) with prefix <= key < end."""
        layers = [self.writes, *self._layers]  # newest first
        best: tuple[bytes, bytes] | None = None
        for key, value in self._store.scan_range(prefix, end):
            shadowed = False
            for layer in layers:
                if key in layer:
                    shadowed = layer[key] is None
                    if not shadowed:
                        value = layer[key]  # type: ignore[assignment]
                    break
            if not shadowed:
                best = (key, value)
                break
        for layer in reversed(layers):  # oldest first, so newer layers win below
            for key, value in layer.items():
                if value is None or not (prefix <= key < end):
                    continue
                if best is not None and key >= best[0]:
                    continue
                if self.get(key) is not None:
                    best = (key, self.get(key))  # type: ignore[assignment]
        return best

    def delete_prefix(self, prefix: bytes) -> None:
        for key, _ in self.scan_prefix(prefix):
            self.delete(key)


def _overlay(merged: dict[bytes, bytes | None], layer: Writes, start: bytes, end: bytes) -> None:
    for key, value in layer.items():
        if start <= key < end:
            merged[key] = value
