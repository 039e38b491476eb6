"""Durations, timestamps and the Arrow-to-JSON conversion of ``restate sql --json``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from restate_cli.arrow_rows import cell_text, decode_stream, first_int, table_rows
from restate_cli.client import QueryResult
from restate_cli.commands.sql import json_array, json_lines
from restate_cli.durations import DurationError, normalize_duration, parse_duration_ms
from restate_cli.timefmt import ago, format_date, format_instant, human_span, parse_timestamp


@pytest.mark.parametrize(
    ("given", "sent"),
    # what the real CLI 1.7.12 sent in PATCH /services/{name} for these inputs
    [
        ("90s", "1m 30s"),
        ("2h", "2h"),
        ("36h", "1d 12h"),
        ("500ms", "500ms"),
        ("PT1H30M", "1h 30m"),
        ("10hours", "10h"),
        ("2d", "2d"),
        ("5d 1h 30m 15s", "5d 1h 30m 15s"),
        ("1500ms", "1s 500ms"),
        ("90m", "1h 30m"),
        ("400d", "400d"),
        ("1w", "7d"),
        ("P1D", "1d"),
        ("PT0.5S", "500ms"),
    ],
)
def test_durations_are_normalised_like_the_real_cli(given: str, sent: str) -> None:
    assert normalize_duration(given) == sent


@pytest.mark.parametrize("bad", ["", "abc", "5 parsecs", "P", "PT", "1h x"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(DurationError):
        parse_duration_ms(bad)


def test_timestamps() -> None:
    admin = parse_timestamp("2026-11-24T17:46:54.819000000Z")
    query = parse_timestamp("2026-11-24T17:46:54.819Z")
    assert admin == query == datetime(2026, 11, 24, 17, 46, 54, 819000, tzinfo=UTC)
    assert parse_timestamp("nope") is None
    assert parse_timestamp(format_instant(query, "iso8601")) == query
    assert format_date(None) == "-"
    assert human_span(timedelta(minutes=2, seconds=29, milliseconds=542)) == (
        "2 minutes, 29 seconds and 542 ms"
    )
    assert human_span(timedelta(seconds=10, milliseconds=978)) == "10 seconds and 978 ms"
    assert human_span(timedelta(0)) == "0 ms"
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert ago(now - timedelta(seconds=17), now) == "17 seconds ago"
    assert ago(now - timedelta(minutes=1, seconds=5), now) == "1 minute ago"
    assert ago(now + timedelta(hours=2), now) == "in 2 hours"


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def test_arrow_rows_are_written_like_the_real_cli() -> None:
    table = pa.table(
        {
            "id": pa.array(["inv_1", None], pa.large_string()),
            "created_at": pa.array([1795542462051, 1795542462000], pa.timestamp("ms", "+00:00")),
            "retention": pa.array([86_400_000, 1500], pa.duration("ms")),
            "tiny": pa.array([1, -1_500_000], pa.duration("us")),
            "value": pa.array([b"7", b"\x00\xff"], pa.large_binary()),
            "services": pa.array([["A", "B"], []], pa.list_(pa.large_string())),
            "revision": pa.array([1, None], pa.uint64()),
            "public": pa.array([True, False]),
            "f": pa.array([1.5, None]),
        }
    )
    rows = table_rows(decode_stream(_ipc(table)))
    assert rows == [
        {
            "id": "inv_1",
            "created_at": "2026-11-24T17:47:42.051Z",
            "retention": "PT86400S",
            "tiny": "PT0.000001S",
            "value": "37",
            "services": ["A", "B"],
            "revision": 1,
            "public": True,
            "f": 1.5,
        },
        {
            "created_at": "2026-11-24T17:47:42Z",
            "retention": "PT1.5S",
            "tiny": "-PT1.5S",
            "value": "00ff",
            "services": [],
            "public": False,
        },
    ]
    result = QueryResult(list(table.column_names), rows)
    assert json_array(result).startswith('[{"id":"inv_1","created_at":"2026-11-24T17:47:42.051Z"')
    assert not json_array(result).endswith("\n")  # the real CLI prints no newline after it
    assert json_lines(result).count("\n") == 2
    assert cell_text(["A", "B"]) == "[A, B]"
    assert cell_text(None) == "" and cell_text(True) == "true"


def test_counts_and_empty_answers() -> None:
    count = pa.table({"count(Int64(1))": pa.array([9], pa.int64())})
    assert first_int(decode_stream(_ipc(count))) == 9
    empty = pa.table({"name": pa.array([], pa.large_string())})
    assert table_rows(decode_stream(_ipc(empty))) == []
    assert first_int(empty) == 0
