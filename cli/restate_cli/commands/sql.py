"""``restate sql QUERY``: runs a query on ``/query`` (Arrow) and prints a table, or JSON
exactly as the real CLI prints it (``--json``: one array, no newline after it; ``--jsonl``:
one object per line). The row count and timing go to stderr."""

from __future__ import annotations

import json
import time

import click

from restate_cli.arrow_rows import cell_text
from restate_cli.client import QueryResult
from restate_cli.session import Session, run_watched, session
from restate_cli.settings import common_options, watch_options


def json_array(result: QueryResult) -> str:
    return json.dumps(result.rows, separators=(",", ":"), ensure_ascii=False)


def json_lines(result: QueryResult) -> str:
    return "".join(
        json.dumps(row, separators=(",", ":"), ensure_ascii=False) + "\n" for row in result.rows
    )


@click.command("sql")
@watch_options
@click.option("--json", "as_json", is_flag=True, help="Print the result as a JSON array.")
@click.option("--jsonl", "as_jsonl", is_flag=True, help="Print the result as JSON lines.")
@click.argument("query")
@common_options
def sql(query: str, as_json: bool, as_jsonl: bool, watch: bool, interval: float) -> None:
    """Runs SQL queries against the data fusion service."""
    s = session()
    run_watched(lambda: _run(s, query, as_json, as_jsonl), watch=watch, interval=interval)


def _run(s: Session, query: str, as_json: bool, as_jsonl: bool) -> None:
    started = time.monotonic()
    result = s.client.query(query)
    took = (time.monotonic() - started) * 1000
    if as_json:
        s.out.raw(json_array(result))
    elif as_jsonl:
        s.out.raw(json_lines(result))
    elif result.rows:
        s.out.table(
            [c.upper() for c in result.columns],
            [[cell_text(row.get(c)) for c in result.columns] for row in result.rows],
        )
        s.out.line()
    s.out.note(f"{len(result.rows)} rows. Query took {took:.6f}ms")
