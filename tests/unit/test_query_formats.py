"""/query answer formats: JSON rows and Arrow IPC, checked against the real server's
answers (tests/data/ground-truth/cli-capture.jsonl and probes of restate-server 1.7.12)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from restate_server.query.json_format import JsonRows, format_duration, format_float
from restate_server.query.schemas import BIN, BOOL, STR, STR_LIST, TS, U32, U64
from tests.unit.query_support import arrow_table, empty_view

CAPTURE = Path(__file__).resolve().parents[1] / "data/ground-truth/cli-capture.jsonl"

# the types of the columns the CLI's JSON queries return (by output name)
_TIMESTAMPS = {
    "created_at",
    "state_modified_at",
    "modified_at",
    "oldest_at",
    "invocation_created_at",
    "next_retry_at",
    "last_start_at",
    "appended_at",
    "sleep_wakeup_at",
}
_TYPES: dict[str, pa.DataType] = {
    **dict.fromkeys(_TIMESTAMPS, TS),
    "num_invocations": pa.int64(),
    "inv_count": pa.int64(),
    "num_pending": pa.int64(),
    "num_retries": U64,
    "index": U32,
    "version": U32,
    "pinned_deployment_exists": BOOL,
    "completed": BOOL,
    "value": BIN,
    "services": STR_LIST,
}


def _captured_json_answers() -> list[dict[str, Any]]:
    answers = []
    for line in CAPTURE.read_text().splitlines():
        record = json.loads(line)
        if (
            record.get("path", "").endswith("/query")
            and record["status"] == 200
            and record["resp_headers"].get("content-type") == "application/json"
        ):
            answers.append(record)
    return answers


def _arrow_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if _TYPES.get(name) == TS:
        moment = datetime.datetime.fromisoformat(value)
        return int(moment.timestamp() * 1000 + 0.5)
    if _TYPES.get(name) == BIN:
        return bytes.fromhex(value)
    return value


def test_every_captured_json_row_is_written_the_same() -> None:
    answers = _captured_json_answers()
    assert len(answers) > 40
    checked = 0
    for record in answers:
        rows = record["resp_body"]["rows"]
        names = {name for row in rows for name in row}
        for row in rows:
            absent = sorted(names - set(row))  # nulls here: left out of the object
            fields = [pa.field(n, _TYPES.get(n, STR)) for n in [*row, *absent]]
            schema = pa.schema(fields)
            arrays = [pa.array([_arrow_value(f.name, row.get(f.name))], f.type) for f in fields]
            writer = JsonRows(schema)
            writer.write(pa.RecordBatch.from_arrays(arrays, schema=schema))
            expected = (
                '{"rows":[' + json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "]}"
            )
            assert writer.finish().decode() == expected
            checked += 1
    assert checked > 100


def test_empty_result_is_an_empty_row_list() -> None:
    writer = JsonRows(pa.schema([pa.field("id", STR)]))
    assert writer.finish() == b'{"rows":[]}'


def test_captured_arrow_schemas() -> None:
    for line in CAPTURE.read_text().splitlines():
        record = json.loads(line)
        if not record.get("path", "").endswith("/query") or record["status"] != 200:
            continue
        if record["resp_headers"].get("content-type") != "application/vnd.apache.arrow.stream":
            continue
        table = arrow_table(record["req_body"]["query"], empty_view())
        shown = [f"{f.name}: {f.type}" + ("" if f.nullable else " NOT NULL") for f in table.schema]
        assert shown == record["resp_body"]["arrow_schema"], record["req_body"]["query"]


# what restate-server 1.7.12 answered to the same expressions (probed with curl)
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5, "1.5"),
        (1.0, "1.0"),
        (1e20, "1.0e20"),
        (123456789.0, "123456789.0"),
        (1e9, "1000000000.0"),
        (1e10, "1.0e10"),
        (1e15, "1.0e15"),
        (1e-5, "0.00001"),
        (1e-6, "1.0e-6"),
        (1.23e-4, "0.000123"),
        (1 / 3, "0.3333333333333333"),
        (-0.0, "-0.0"),
        (0.0, "0.0"),
        (1234567890123.5, "1.2345678901235e12"),
        (float("nan"), "null"),
        (float("inf"), "null"),
    ],
)
def test_floats_like_arrow_rs(value: float, text: str) -> None:
    assert format_float(value) == text


@pytest.mark.parametrize(
    ("millis", "text"),
    [(1500, "PT1.5S"), (0, "P0D"), (86_400_000, "PT86400S"), (-1500, "-PT1.5S")],
)
def test_durations_iso_8601(millis: int, text: str) -> None:
    assert format_duration(millis, "ms") == text


def test_value_kinds_against_the_real_server() -> None:
    table = arrow_table(
        "SELECT arrow_cast(1700000000000, 'Timestamp(Millisecond, Some(\"+00:00\"))') as t0, "
        "arrow_cast(1700000000123, 'Timestamp(Millisecond, Some(\"+00:00\"))') as t1, "
        "CAST(NULL as INT) as n, X'00ff' as b, [1,2] as l, [NULL, 1] as l1, "
        "named_struct('a', 1, 'b', NULL) as s, 'x\"y\\n' as str, arrow_cast(1, 'UInt64') as u, "
        "CAST(1.5 AS DECIMAL(10,2)) as dec, DATE '2024-01-02' as dt, true as t, "
        "arrow_cast(1700000000123456, 'Timestamp(Microsecond, None)') as tsn",
        empty_view(),
    )
    writer = JsonRows(table.schema)
    for batch in table.to_batches():
        writer.write(batch)
    assert writer.finish().decode() == (
        '{"rows":[{"t0":"2023-11-14T22:13:20Z","t1":"2023-11-14T22:13:20.123Z",'
        '"b":"00ff","l":[1,2],"l1":[null,1],"s":{"a":1},"str":"x\\"y\\\\n","u":1,'
        '"dec":1.50,"dt":"2024-01-02","t":true,"tsn":"2023-11-14T22:13:20.123456"}]}'
    )
