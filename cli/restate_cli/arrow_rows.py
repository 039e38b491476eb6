"""Arrow IPC answers of ``/query`` as JSON-ready rows, written like the real CLI writes them.

``restate sql --json`` prints what Arrow's JSON writer prints: nulls left out, timestamps in
RFC 3339 (``2026-12-02T00:01:25.949Z``, as many fraction digits as needed), durations in
ISO 8601 (``PT86400S``), binary as lower-case hex, lists as arrays.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

_UNIT_PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
_EPOCH = dt.datetime(1970, 1, 1)


def decode_stream(body: bytes) -> pa.Table:
    """An Arrow IPC stream (schema, batches, end marker) as one table."""
    import pyarrow as pa  # imported on the first query: it takes a while to load

    return pa.ipc.open_stream(pa.py_buffer(body)).read_all()


def _fraction(value: int, per_second: int) -> str:
    """Sub-second digits, in groups of three, only as many as needed (``.949``)."""
    if per_second == 1 or value == 0:
        return ""
    digits = len(str(per_second)) - 1
    text = f"{value:0{digits}d}"
    while text.endswith("000"):
        text = text[:-3]
    return "." + text


def format_timestamp(value: int, unit: str, tz: str | None) -> str:
    per_second = _UNIT_PER_SECOND[unit]
    seconds, sub = divmod(value, per_second)
    moment = _EPOCH + dt.timedelta(seconds=seconds)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + _fraction(sub, per_second)
    if tz is None:
        return text
    if tz in ("+00:00", "UTC", "Z", "+0000"):
        return text + "Z"
    return text + tz


def format_duration(value: int, unit: str) -> str:
    """ISO 8601, fraction without trailing zeros: ``PT1.5S``, ``PT0.000001S``, ``-PT2S``."""
    per_second = _UNIT_PER_SECOND[unit]
    sign = "-" if value < 0 else ""
    seconds, sub = divmod(abs(value), per_second)
    fraction = ""
    if sub:
        digits = len(str(per_second)) - 1
        fraction = "." + f"{sub:0{digits}d}".rstrip("0")
    return f"{sign}PT{seconds}{fraction}S"


def _plain(value: Any) -> Any:
    """A Python value from ``to_pylist`` as JSON (lists, structs, binary inside them)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if value != value else value  # NaN has no JSON form
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return format_duration(int(value.total_seconds() * 1_000_000), "us")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _column(array: Any, typ: Any) -> list[Any]:
    import pyarrow as pa

    if pa.types.is_timestamp(typ):
        ints = array.cast(pa.int64()).to_pylist()
        return [None if v is None else format_timestamp(v, typ.unit, typ.tz) for v in ints]
    if pa.types.is_duration(typ):
        ints = array.cast(pa.int64()).to_pylist()
        return [None if v is None else format_duration(v, typ.unit) for v in ints]
    return [_plain(v) for v in array.to_pylist()]


def table_rows(table: pa.Table) -> list[dict[str, Any]]:
    """One dict per row, in column order, without the null values."""
    names = table.column_names
    columns = [_column(table.column(i), table.schema.field(i).type) for i in range(len(names))]
    rows = []
    for values in zip(*columns, strict=True) if columns else []:
        rows.append({n: v for n, v in zip(names, values, strict=True) if v is not None})
    return rows


def first_int(table: pa.Table) -> int:
    """Column 0 of the first row (count queries); 0 for an empty answer."""
    if table.num_rows == 0 or table.num_columns == 0:
        return 0
    value = table.column(0)[0].as_py()
    return int(value or 0)


def cell_text(value: Any) -> str:
    """A JSON-ready value as a table cell (``restate sql`` without ``--json``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(cell_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)
