"""``accept: application/json``: ``{"rows":[{...},...]}`` the way the real server writes it.

The real server uses arrow-rs's JSON writer; this reproduces its output for the types
queries produce: null values are left out of objects (but written inside lists),
binary is lower-case hex, timestamps are RFC 3339 (``2026-11-24T17:47:42.051Z``, with
only as many fraction digits as needed), durations ISO 8601 (``PT86400S``), floats in
the shortest form that reads back (``1.0e20`` past 1e10, non-finite ones as null),
dates ``2024-01-02``, decimals with their scale (``1.50``), structs and maps as objects.
"""

from __future__ import annotations

import datetime
import json
import math
import struct
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.types as pat

# array -> one JSON text per row (None: a null)
Encode = Callable[[pa.Array], list[str | None]]

_EPOCH = datetime.datetime(1970, 1, 1)
_UNIT_NANOS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_string = json.JSONEncoder(ensure_ascii=False).encode


def format_float(value: float, single: bool = False) -> str:
    """A float as arrow-rs writes it (lexical-core: decimal from 1e-5 up to 1e10)."""
    if not math.isfinite(value):
        return "null"
    if value == 0.0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    negative, digit_tuple, exponent = Decimal(
        _shortest_f32(value) if single else repr(value)
    ).as_tuple()
    sign = "-" if negative else ""
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + int(exponent)  # where the decimal point goes in ``digits``
    power = point - 1  # the power of ten of the first digit
    digits = digits.rstrip("0") or "0"
    if -5 <= power < 10:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        return f"{sign}{digits[:point].ljust(point, '0')}.{digits[point:] or '0'}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}e{power}"


def _shortest_f32(value: float) -> str:
    for precision in range(1, 18):
        text = f"{value:.{precision}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == value:
            return text
    return repr(value)


def _fraction(nanos: int) -> str:
    """Fractional seconds with 0, 3, 6 or 9 digits, as few as show every non-zero one."""
    if nanos == 0:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1_000 == 0:
        return f".{nanos // 1_000:06d}"
    return f".{nanos:09d}"


def _offset_of(tz: str | None) -> datetime.timedelta | None:
    if tz is None:
        return None
    if tz in ("UTC", "Z", "+00:00", "+00"):
        return datetime.timedelta(0)
    if tz[0] in "+-" and len(tz) >= 3:
        hours, _, minutes = tz[1:].partition(":")
        delta = datetime.timedelta(hours=int(hours), minutes=int(minutes or 0))
        return -delta if tz[0] == "-" else delta
    try:
        from zoneinfo import ZoneInfo

        zone = ZoneInfo(tz)
    except Exception:  # an unknown zone name: print as UTC
        return datetime.timedelta(0)
    return zone.utcoffset(datetime.datetime(2000, 1, 1))


def format_timestamp(value: int, unit: str, tz: str | None) -> str:
    total_nanos = value * _UNIT_NANOS[unit]
    seconds, nanos = divmod(total_nanos, 1_000_000_000)
    offset = _offset_of(tz)
    moment = _EPOCH + datetime.timedelta(seconds=seconds)
    if offset is not None:
        moment += offset
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + _fraction(nanos)
    if offset is None:
        return text
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    minutes = abs(minutes)
    return f"{text}{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def format_duration(value: int, unit: str) -> str:
    """ISO 8601 like chrono: ``PT1.5S``, ``-PT1.5S``, ``P0D`` for zero."""
    total = value * _UNIT_NANOS[unit]
    if total == 0:
        return "P0D"
    sign = "-" if total < 0 else ""
    seconds, nanos = divmod(abs(total), 1_000_000_000)
    fraction = f".{nanos:09d}".rstrip("0") if nanos else ""
    return f"{sign}PT{seconds}{fraction}S"


def _quoted(fn: Callable[[Any], str]) -> Callable[[Any], str]:
    return lambda value: '"' + fn(value) + '"'


def _leaf(array_type: pa.DataType) -> tuple[Callable[[pa.Array], list[Any]], Callable[[Any], str]]:
    """(python values of an array, one value -> JSON) for a non-nested type."""
    to_list: Callable[[pa.Array], list[Any]] = lambda array: array.to_pylist()  # noqa: E731
    if pat.is_boolean(array_type):
        return to_list, lambda v: "true" if v else "false"
    if pat.is_integer(array_type):
        return to_list, str
    if pat.is_floating(array_type):
        single = pat.is_float32(array_type) or pat.is_float16(array_type)
        return to_list, lambda v: format_float(float(v), single)
    if pat.is_decimal(array_type):
        return to_list, str
    if pat.is_string(array_type) or pat.is_large_string(array_type):
        return to_list, _string
    if pat.is_binary(array_type) or pat.is_large_binary(array_type):
        return to_list, _quoted(bytes.hex)
    if pat.is_fixed_size_binary(array_type):
        return to_list, _quoted(bytes.hex)
    if pat.is_timestamp(array_type):
        unit, tz = array_type.unit, array_type.tz
        ints = lambda array: array.cast(pa.int64()).to_pylist()  # noqa: E731
        return ints, _quoted(lambda v: format_timestamp(v, unit, tz))
    if pat.is_duration(array_type):
        unit = array_type.unit
        ints = lambda array: array.cast(pa.int64()).to_pylist()  # noqa: E731
        return ints, _quoted(lambda v: format_duration(v, unit))
    if pat.is_date(array_type):
        return to_list, _quoted(lambda v: v.isoformat())
    if pat.is_time(array_type):
        return to_list, _quoted(lambda v: v.isoformat())
    if pat.is_null(array_type):
        return to_list, lambda _v: "null"
    # intervals and anything rarer: their text form
    return lambda array: [None if v is None else str(v) for v in array.to_pylist()], _string


def _join_list(items: Iterable[str | None]) -> str:
    return "[" + ",".join("null" if item is None else item for item in items) + "]"


def encoder(array_type: pa.DataType) -> Encode:
    """A column encoder for ``array_type``."""
    if pat.is_dictionary(array_type):
        inner = encoder(array_type.value_type)
        return lambda array: inner(array.dictionary_decode())
    if (
        pat.is_list(array_type)
        or pat.is_large_list(array_type)
        or pat.is_fixed_size_list(array_type)
    ):
        items = encoder(array_type.value_type)
        return lambda array: _lists(array, items)
    if pat.is_map(array_type):
        keys = encoder(array_type.key_type)
        values = encoder(array_type.item_type)
        return lambda array: _maps(array, keys, values)
    if pat.is_struct(array_type):
        fields = [(_string(f.name), encoder(f.type)) for f in array_type]
        return lambda array: _structs(array, fields)
    to_python, to_json = _leaf(array_type)

    def encode(array: pa.Array) -> list[str | None]:
        return [None if v is None else to_json(v) for v in to_python(array)]

    return encode


def _lists(array: Any, items: Encode) -> list[str | None]:
    out: list[str | None] = []
    for index in range(len(array)):
        if not array[index].is_valid:
            out.append(None)
            continue
        out.append(_join_list(items(array[index].values)))
    return out


def _maps(array: Any, keys: Encode, values: Encode) -> list[str | None]:
    out: list[str | None] = []
    for index in range(len(array)):
        entry = array[index]
        if not entry.is_valid:
            out.append(None)
            continue
        pairs = entry.values
        names = keys(pairs.field(0))
        texts = values(pairs.field(1))
        parts = []
        for name, text in zip(names, texts, strict=True):
            key = name if name is not None and name.startswith('"') else _string(name or "")
            parts.append(f"{key}:{'null' if text is None else text}")
        out.append("{" + ",".join(parts) + "}")
    return out


def _structs(array: Any, fields: list[tuple[str, Encode]]) -> list[str | None]:
    columns = [(name, encode(array.field(i))) for i, (name, encode) in enumerate(fields)]
    valid = array.is_valid().to_pylist() if array.null_count else [True] * len(array)
    out: list[str | None] = []
    for row in range(len(array)):
        if not valid[row]:
            out.append(None)
            continue
        parts = [f"{name}:{texts[row]}" for name, texts in columns if texts[row] is not None]
        out.append("{" + ",".join(parts) + "}")
    return out


class JsonRows:
    """Writes ``{"rows":[...]}`` one batch at a time."""

    def __init__(self, schema: pa.Schema) -> None:
        self._columns = [(_string(field.name), encoder(field.type)) for field in schema]
        self._parts: list[bytes] = [b'{"rows":[']
        self._first = True
        self.size = len(self._parts[0])

    def write(self, batch: pa.RecordBatch) -> None:
        columns = [
            (name, encode(batch.column(i))) for i, (name, encode) in enumerate(self._columns)
        ]
        rows = []
        for row in range(batch.num_rows):
            fields = [f"{name}:{texts[row]}" for name, texts in columns if texts[row] is not None]
            rows.append("{" + ",".join(fields) + "}")
        if not rows:
            return
        text = ",".join(rows)
        if not self._first:
            text = "," + text
        self._first = False
        chunk = text.encode()
        self._parts.append(chunk)
        self.size += len(chunk)

    def finish(self) -> bytes:
        self._parts.append(b"]}")
        return b"".join(self._parts)
