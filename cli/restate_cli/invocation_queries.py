"""Fetching invocations the way the real CLI does: ids, total count, then full rows; and
one invocation with its journal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from restate_cli.client import AdminClient
from restate_cli.errors import CliError
from restate_cli.sql import invocations as sql


@dataclass(frozen=True)
class InvocationPage:
    rows: list[dict[str, Any]]
    total: int


def list_invocations(
    client: AdminClient,
    condition: str,
    *,
    limit: int,
    order: str | None = sql.NEWEST_FIRST,
    with_count: bool = True,
) -> InvocationPage:
    """The three queries of ``invocations list`` (the rows query only if ids were found)."""
    ids = [
        str(row["id"])
        for row in client.query_json(sql.ids_query(condition, order=order, limit=limit))
        if "id" in row
    ]
    total = client.query_count(sql.count_query(condition)) if with_count else len(ids)
    if not ids:
        return InvocationPage([], total)
    rows = client.query_json(sql.rows_query(condition, ids, order=order))
    return InvocationPage(rows, total)


def get_invocation(client: AdminClient, invocation_id: str) -> dict[str, Any]:
    """One invocation's row; ``CliError`` if there is none."""
    condition = sql.by_id_condition(invocation_id)
    found = client.query_json(sql.ids_query(condition, order=None, limit=1))
    if not found:
        raise CliError(f"Invocation {invocation_id} not found!")
    rows = client.query_json(sql.rows_query(condition, [invocation_id], order=None))
    if not rows:
        raise CliError(f"Invocation {invocation_id} not found!")
    return rows[0]


@dataclass(frozen=True)
class JournalShape:
    """Which optional ``sys_journal`` columns the server has (asked once per command)."""

    promise_name: bool
    entry_json: bool


def journal_shape(client: AdminClient) -> JournalShape:
    promise = client.query_count(sql.journal_column_count_query(sql.PROMISE_NAME_COLUMNS))
    entry = client.query_count(sql.journal_column_count_query(sql.ENTRY_JSON_COLUMNS))
    return JournalShape(promise >= 1, entry >= len(sql.ENTRY_JSON_COLUMNS))


def get_journal(
    client: AdminClient, invocation_id: str, shape: JournalShape
) -> list[dict[str, Any]]:
    """The newest entries (the real CLI's query), oldest first."""
    rows = client.query_json(
        sql.journal_query(
            invocation_id,
            with_promise_name=shape.promise_name,
            with_entry_json=shape.entry_json,
        )
    )
    return sorted(rows, key=lambda e: int(e.get("index") or 0))
