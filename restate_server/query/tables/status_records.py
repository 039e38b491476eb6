"""Reading stored invocation statuses for the invocation tables, as cheaply as possible.

Most rows of a big table are skipped by their status or service name (``status !=
'completed'``, ``target_service_name IN (...)``): both are the first fields of the
msgpack record, so they are read off the raw bytes without decoding it. Rows that stay
are decoded together, one C call per chunk, into a struct holding only the leading
fields the projected columns need.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterator
from itertools import islice
from typing import Any

import msgspec

from restate_server.partition.table import PartitionTable
from restate_server.protocol.errors import InvalidIdError
from restate_server.protocol.ids import InvocationId, partition_key_for_key
from restate_server.query.hints import ScanHints
from restate_server.query.partition_scan import in_partition, partition_range
from restate_server.query.read_view import ReadView
from restate_server.storage import keys
from restate_server.storage.keys import prefix_end
from restate_server.storage.records import COMPLETED, InvocationStatus

RAW_STATUSES = ("scheduled", "inboxed", "invoked", "suspended", "paused", "completed")
FIELD_NAMES = tuple(field.name for field in msgspec.structs.fields(InvocationStatus))
_ARRAY32 = struct.Struct(">BI")


def field_count(names: set[str]) -> int:
    """How many leading fields of the record cover ``names`` (unknown names are ignored)."""
    positions = [FIELD_NAMES.index(name) for name in names if name in FIELD_NAMES]
    return max(positions) + 1 if positions else 0


@functools.cache
def _decoder(count: int) -> msgspec.msgpack.Decoder[Any]:
    """A decoder for a list of records cut down to their first ``count`` fields."""
    spec: list[Any] = []
    for field in msgspec.structs.fields(InvocationStatus)[: max(count, 1)]:
        if field.required:
            spec.append((field.name, field.type))
        elif field.default_factory is not msgspec.NODEFAULT:
            spec.append(
                (field.name, field.type, msgspec.field(default_factory=field.default_factory))
            )
        else:
            spec.append((field.name, field.type, field.default))
    # array_like records ignore trailing fields they do not declare
    prefix = msgspec.defstruct(f"StatusPrefix{count}", spec, array_like=True, gc=False)
    return msgspec.msgpack.Decoder(list[prefix])  # type: ignore[valid-type]


def decode_many(values: list[bytes], count: int) -> list[Any]:
    """Decode many records at once (their leading ``count`` fields)."""
    blob = _ARRAY32.pack(0xDD, len(values)) + b"".join(values)
    return _decoder(count).decode(blob)  # type: ignore[no-any-return]


def _field_start(value: bytes) -> int:
    first = value[0]
    if first == 0xDC:  # array 16
        return 3
    if first == 0xDD:  # array 32
        return 5
    return 1  # fixarray


def _str_at(value: bytes, pos: int) -> tuple[str, int]:
    """A msgpack string at ``pos``: (text, position after it)."""
    head = value[pos]
    if head & 0xE0 == 0xA0:
        start, length = pos + 1, head & 0x1F
    elif head == 0xD9:
        start, length = pos + 2, value[pos + 1]
    elif head == 0xDA:
        start, length = pos + 3, int.from_bytes(value[pos + 1 : pos + 3], "big")
    else:
        start, length = pos + 5, int.from_bytes(value[pos + 1 : pos + 5], "big")
    return value[start : start + length].decode(), start + length


def raw_status_of(value: bytes) -> str:
    return _str_at(value, _field_start(value))[0]


# a record's leading bytes (array 16 header, status fixstr) -> its status
_STATUS_OF_BYTES = {msgspec.msgpack.encode(s): s for s in RAW_STATUSES}


def raw_statuses(values: list[bytes]) -> list[str]:
    """``raw_status_of`` of many records: a dictionary lookup each in the common case."""
    known = _STATUS_OF_BYTES
    out = []
    for value in values:
        status = known.get(value[3 : 4 + (value[3] & 0x1F)]) if value[0] == 0xDC else None
        out.append(status if status is not None else raw_status_of(value))
    return out


def service_name_of(value: bytes) -> str:
    """The target's service: the first element of the record's second field."""
    _, after_status = _str_at(value, _field_start(value))
    # the target is a fixarray (0x9X) of five fields
    return _str_at(value, after_status + 1)[0]


class StatusFilter:
    """What the raw bytes of a record must show for the row to be read any further."""

    __slots__ = ("_services", "_services_raw", "_statuses", "_statuses_raw")

    def __init__(self, statuses: frozenset[str] | None, services: frozenset[Any] | None) -> None:
        self._statuses = statuses
        self._services = services
        # the same as msgpack strings (statuses) and UTF-8 (service names), to compare
        # with the record's bytes
        self._statuses_raw = (
            None if statuses is None else frozenset(msgspec.msgpack.encode(s) for s in statuses)
        )
        self._services_raw = (
            None
            if services is None
            else frozenset(s.encode() for s in services if isinstance(s, str))
        )

    @property
    def passes_all(self) -> bool:
        return self._statuses is None and self._services is None

    def __call__(self, value: bytes) -> bool:
        if self._statuses is not None and raw_status_of(value) not in self._statuses:
            return False
        return self._services is None or service_name_of(value) in self._services

    def select(self, items: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
        """The items that pass, judged on the leading bytes of the record without calls in
        the common layout: array 16, the status a fixstr from byte 3, then the target as a
        fixarray whose first element (the service) is a fixstr."""
        statuses, services = self._statuses_raw, self._services_raw
        for item in items:
            value = item[1]
            if value[0] != 0xDC:
                if self(value):
                    yield item
                continue
            after_status = 4 + (value[3] & 0x1F)
            if statuses is not None and value[3:after_status] not in statuses:
                continue
            if services is None:
                yield item
                continue
            head = value[after_status + 1]
            if value[after_status] == 0x95 and head & 0xE0 == 0xA0:
                start = after_status + 2
                if value[start : start + (head & 0x1F)] in services:
                    yield item
            elif self(value):
                yield item


def raw_status_set(
    allowed: frozenset[Any] | None, excluded: frozenset[Any] | None
) -> frozenset[str] | None:
    """Hints on the raw ``status`` column as the set of raw statuses to read."""
    if allowed is None and not excluded:
        return None
    statuses = frozenset(RAW_STATUSES) if allowed is None else frozenset(allowed)
    return statuses - (excluded or frozenset())


def ids_in(hints: ScanHints, partitions: PartitionTable, partition_id: int) -> list[bytes] | None:
    """The invocation ids of the hints owned by the partition (None: no id hint)."""
    texts = hints.values("id")
    if texts is None:
        return None
    ids = []
    for text in texts:
        if not isinstance(text, str):
            continue
        try:
            raw = InvocationId.from_str(text).to_bytes()
        except InvalidIdError:
            continue  # no such invocation can exist
        if in_partition(int.from_bytes(raw[:8], "big"), partitions, partition_id):
            ids.append(raw)
    return sorted(ids)


def status_ranges(
    hints: ScanHints,
    partitions: PartitionTable,
    partition_id: int,
    statuses: frozenset[str] | None = None,
) -> list[tuple[bytes, bytes]]:
    """The key ranges a scan of the partition reads (none when it reads ids): of the
    active-invocation index when only statuses other than ``completed`` can match
    (``statuses``, the raw ones), else of the stored statuses."""
    if hints.values("id") is not None:
        return []
    tag = keys.INVOCATION_STATUS if reads_completed(statuses) else keys.ACTIVE_INVOCATION
    prefixes: list[bytes] = []
    instance_keys = hints.values("target_service_key")
    pks = hints.values("partition_key")
    if instance_keys is not None:
        for key in instance_keys:
            if isinstance(key, str):
                pk = partition_key_for_key("", key)
                if (pks is None or pk in pks) and in_partition(pk, partitions, partition_id):
                    prefixes.append(tag + pk.to_bytes(8, "big"))
    elif pks is not None:
        for pk in pks:
            if (
                isinstance(pk, int)
                and 0 <= pk < 1 << 64
                and in_partition(pk, partitions, partition_id)
            ):
                prefixes.append(tag + pk.to_bytes(8, "big"))
    else:
        return [partition_range(tag, partitions, partition_id)]
    return [(p, prefix_end(p)) for p in sorted(set(prefixes))]


def reads_completed(statuses: frozenset[str] | None) -> bool:
    return statuses is None or COMPLETED in statuses


def status_chunks(
    hints: ScanHints,
    view: ReadView,
    partition_id: int,
    statuses: frozenset[str] | None,
    keep: StatusFilter,
    size: int,
    with_keys: bool = True,
) -> Iterator[tuple[list[bytes], list[bytes]]]:
    """(status keys, records) of the partition's invocations that can match ``hints``, in
    chunks of up to ``size`` rows.

    Without ``with_keys`` the key list may be empty: reading values alone is cheaper.
    """
    snapshot = view.snapshot
    ids = ids_in(hints, view.partitions, partition_id)
    if ids is not None:
        found = [
            (keys.invocation_status(raw), snapshot.get(keys.invocation_status(raw))) for raw in ids
        ]
        kept = [(key, value) for key, value in found if value is not None and keep(value)]
        for offset in range(0, len(kept), size):
            part = kept[offset : offset + size]
            yield [key for key, _ in part], [value for _, value in part]
        return
    ranges = status_ranges(hints, view.partitions, partition_id, statuses)
    if not reads_completed(statuses):
        yield from _active_chunks(snapshot, ranges, statuses, keep, size)
        return
    for start, end in ranges:
        if not with_keys and keep.passes_all:
            values = snapshot.values(start, end)
            while chunk := list(islice(values, size)):
                yield [], chunk
            continue
        items = snapshot.items(start, end)
        if not keep.passes_all:
            items = keep.select(items)
        while part := list(islice(items, size)):
            yield [key for key, _ in part] if with_keys else [], [value for _, value in part]


def _active_chunks(
    snapshot: Any,
    ranges: list[tuple[bytes, bytes]],
    statuses: frozenset[str] | None,
    keep: StatusFilter,
    size: int,
) -> Iterator[tuple[list[bytes], list[bytes]]]:
    """Through the active-invocation index: its entries hold the status, so only the
    records of invocations in one of ``statuses`` are read (point reads)."""
    wanted = None if statuses is None else frozenset(s.encode() for s in statuses)
    part_keys: list[bytes] = []
    part_values: list[bytes] = []
    for start, end in ranges:
        for index_key, status in snapshot.items(start, end):
            if wanted is not None and status not in wanted:
                continue
            key = keys.INVOCATION_STATUS + index_key[1:]
            value = snapshot.get(key)
            if value is None or not keep(value):
                continue  # an index entry is written with its record: never missing
            part_keys.append(key)
            part_values.append(value)
            if len(part_values) >= size:
                yield part_keys, part_values
                part_keys, part_values = [], []
    if part_values:
        yield part_keys, part_values
