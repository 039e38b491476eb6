"""Building Arrow columns from stored records, fast: one Python list per column, then one
``pa.array`` call; ids turned into strings with an unrolled base62 encoder."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import pyarrow as pa

from restate_server.protocol.ids import B62

# every value below 62**2 as its two base62 digits
_PAIRS = [a + b for a in B62 for b in B62]


def invocation_id_text(raw: bytes, offset: int = 0) -> str:
    """``inv_1...`` of the 24 id bytes at ``raw[offset:]`` (``InvocationId.to_str``, unrolled).

    Both parts are written as base62 of their byte-swapped value: reading the bytes as
    little-endian does the swap.
    """
    pairs = _PAIRS
    pk = int.from_bytes(raw[offset : offset + 8], "little")
    uuid = int.from_bytes(raw[offset + 8 : offset + 24], "little")
    uuid, r0 = divmod(uuid, 3844)
    uuid, r1 = divmod(uuid, 3844)
    uuid, r2 = divmod(uuid, 3844)
    uuid, r3 = divmod(uuid, 3844)
    uuid, r4 = divmod(uuid, 3844)
    uuid, r5 = divmod(uuid, 3844)
    uuid, r6 = divmod(uuid, 3844)
    uuid, r7 = divmod(uuid, 3844)
    uuid, r8 = divmod(uuid, 3844)
    uuid, r9 = divmod(uuid, 3844)
    r10 = uuid % 3844
    pk, q0 = divmod(pk, 3844)
    pk, q1 = divmod(pk, 3844)
    pk, q2 = divmod(pk, 3844)
    pk, q3 = divmod(pk, 3844)
    pk, q4 = divmod(pk, 3844)
    q5 = pk % 3844
    return "".join(
        (
            "inv_1",
            pairs[q5][1],
            pairs[q4],
            pairs[q3],
            pairs[q2],
            pairs[q1],
            pairs[q0],
            pairs[r10],
            pairs[r9],
            pairs[r8],
            pairs[r7],
            pairs[r6],
            pairs[r5],
            pairs[r4],
            pairs[r3],
            pairs[r2],
            pairs[r1],
            pairs[r0],
        )
    )


def id_texts(keys: Sequence[bytes], offset: int) -> list[str]:
    return [invocation_id_text(key, offset) for key in keys]


def partition_keys(keys: Sequence[bytes], offset: int) -> list[int]:
    """The big-endian u64 partition key at ``offset`` of every key."""
    end = offset + 8
    return [int.from_bytes(key[offset:end], "big") for key in keys]


def utf8_or_none(raw: bytes) -> str | None:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None


# column name -> a function computing its Python values (called only when projected)
Makers = dict[str, Callable[[], Sequence[Any]]]


class BatchBuilder:
    """Batches of the projected ``columns`` of ``schema`` (in table order).

    Each column comes from a maker; only projected columns are computed. A projected
    column without a maker is all nulls (data this server does not have).
    """

    __slots__ = ("schema",)

    def __init__(self, schema: pa.Schema, columns: Sequence[str]) -> None:
        self.schema = pa.schema([schema.field(name) for name in columns])

    def build(self, rows: int, makers: Makers) -> pa.RecordBatch:
        if not self.schema:  # no column projected (COUNT(*)): rows without columns
            return pa.RecordBatch.from_struct_array(pa.nulls(rows, pa.struct([])))
        arrays = []
        for field in self.schema:
            maker = makers.get(field.name)
            if maker is None:
                arrays.append(pa.nulls(rows, field.type))
            else:
                arrays.append(pa.array(maker(), type=field.type))
                # a column is a millisecond or two of Python: let a waiting thread (the
                # event loop) have the GIL now rather than at the next switch interval
                time.sleep(0)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)
