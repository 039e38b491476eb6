"""Tables keyed by one virtual-object / workflow instance (state, inbox, promises, locks).

Their keys are ``tag + partition key (u64 BE) + len-prefixed service + len-prefixed key
+ rest``, and the partition key of an instance is a hash of its key: a query naming
the key (and the service) reads one short key range instead of the whole table.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

from restate_server.partition.table import PartitionTable
from restate_server.protocol.ids import partition_key_for_key
from restate_server.query.hints import ScanHints
from restate_server.query.partition_scan import in_partition, partition_range
from restate_server.query.read_view import ReadView
from restate_server.storage import keys as storage_keys
from restate_server.storage.keys import prefix_end

_U16 = struct.Struct(">H")


class InstanceKey(NamedTuple):
    partition_key: int
    service: str
    key: str
    # where the rest of the stored key starts (state key, inbox sequence, promise name)
    rest: int


def parse_instance_key(raw: bytes) -> InstanceKey:
    partition_key = int.from_bytes(raw[1:9], "big")
    service_len = _U16.unpack_from(raw, 9)[0]
    service_end = 11 + service_len
    key_len = _U16.unpack_from(raw, service_end)[0]
    key_start = service_end + 2
    return InstanceKey(
        partition_key,
        raw[11:service_end].decode(),
        raw[key_start : key_start + key_len].decode(),
        key_start + key_len,
    )


def _strings(values: frozenset[object] | None) -> list[str] | None:
    if values is None:
        return None
    return sorted(v for v in values if isinstance(v, str))


def instance_ranges(
    tag: bytes, hints: ScanHints, partitions: PartitionTable, partition_id: int
) -> list[tuple[bytes, bytes]]:
    """The key ranges of partition ``partition_id`` that can hold matching rows."""
    names = _strings(hints.values("service_name"))
    instance_keys = _strings(hints.values("service_key"))
    pks = hints.values("partition_key")
    prefixes: list[bytes] = []
    if instance_keys is not None:
        for key in instance_keys:
            pk = partition_key_for_key("", key)
            if pks is not None and pk not in pks:
                continue
            if not in_partition(pk, partitions, partition_id):
                continue
            if names is None:
                prefixes.append(tag + pk.to_bytes(8, "big"))
            else:
                prefixes.extend(
                    tag + storage_keys.service_key_prefix(pk, name, key) for name in names
                )
    elif pks is not None:
        for pk in sorted(p for p in pks if isinstance(p, int) and 0 <= p < 1 << 64):
            if in_partition(pk, partitions, partition_id):
                prefixes.append(tag + pk.to_bytes(8, "big"))
    else:
        return [partition_range(tag, partitions, partition_id)]
    return [(prefix, prefix_end(prefix)) for prefix in sorted(set(prefixes))]


def scan_instances(
    tag: bytes, hints: ScanHints, view: ReadView, partition_id: int
) -> Iterator[tuple[bytes, bytes]]:
    for start, end in instance_ranges(tag, hints, view.partitions, partition_id):
        yield from view.snapshot.items(start, end)
