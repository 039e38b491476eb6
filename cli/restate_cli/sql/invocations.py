"""Invocation queries: the list/describe three-step form (ids, count, full rows), the
journal, and the selection behind cancel/kill/purge/pause/resume/restart-as-new.

The layout (indentation, blank ``WHERE``/``ORDER BY`` lines) is the real CLI's: a server
that parses the real CLI's statements parses these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from restate_cli.sql.literals import in_list, quote

NEWEST_FIRST = "ORDER BY inv.created_at DESC, inv.id"
OLDEST_FIRST = "ORDER BY inv.created_at ASC, inv.id"
# the count query scans at most this many rows, as the real CLI's does
COUNT_SCAN_LIMIT = 50000

# The columns of one invocation row (what the real CLI deserialises), in its order.
INVOCATION_COLUMNS: tuple[str, ...] = (
    "inv.id",
    "inv.target",
    "inv.target_service_ty",
    "inv.idempotency_key",
    "inv.status",
    "inv.created_at",
    "inv.modified_at as state_modified_at",
    "inv.pinned_deployment_id",
    "inv.retry_count as num_retries",
    "inv.last_failure as last_failure_message",
    "inv.last_failure_related_entry_index as last_failure_entry_index",
    "inv.last_failure_related_entry_name as last_failure_entry_name",
    "inv.last_failure_related_entry_type as last_failure_entry_ty",
    "inv.last_attempt_deployment_id",
    "inv.last_attempt_server",
    "inv.next_retry_at",
    "inv.last_start_at",
    "inv.invoked_by_id",
    "inv.invoked_by_target",
    "inv.trace_id",
    "inv.completion_result",
    "inv.completion_failure",
    "dp.id IS NOT NULL as pinned_deployment_exists",
)

# sys_invocation.status values the list filter accepts
LIST_STATUSES: tuple[str, ...] = (
    "scheduled",
    "pending",
    "ready",
    "running",
    "suspended",
    "backing-off",
    "completed",
    "paused",
)


@dataclass(frozen=True)
class InvocationFilter:
    """The filters of ``invocations list`` (and ``watch``)."""

    services: Sequence[str] = ()
    handlers: Sequence[str] = ()
    keys: Sequence[str] = ()
    deployments: Sequence[str] = ()
    statuses: Sequence[str] = ()
    completion_result: str | None = None
    virtual_objects_only: bool = False
    zombie: bool = False
    # --all: include completed invocations and ignore the status filter
    include_all: bool = False

    def conditions(self) -> list[str]:
        """The ``AND``-ed conditions, in the real CLI's order."""
        parts: list[str] = []
        if self.services:
            parts.append(f"inv.target_service_name IN {in_list(self.services)}")
        if self.handlers:
            parts.append(f"inv.target_handler_name IN {in_list(self.handlers)}")
        if self.keys:
            parts.append(f"inv.target_service_key IN {in_list(self.keys)}")
        if self.virtual_objects_only:
            parts.append(
                "inv.target_service_name IN "
                "(select name from sys_service where ty = 'virtual_object')"
            )
        if self.zombie:
            parts.append(
                "(inv.pinned_deployment_id IS NOT NULL AND inv.pinned_deployment_id "
                "NOT IN (select id from sys_deployment))"
            )
        if self.deployments:
            ids = in_list(self.deployments)
            parts.append(
                f"(inv.pinned_deployment_id IN {ids} OR inv.last_attempt_deployment_id IN {ids})"
            )
        if self.completion_result is not None:
            parts.append("status = 'completed'")
            parts.append(f"inv.completion_result = {quote(self.completion_result)}")
        elif not self.include_all:
            if self.statuses:
                parts.append(f"status IN {in_list(self.statuses)}")
            else:
                parts.append("status != 'completed'")
        return parts

    def where(self) -> str:
        return " AND ".join(self.conditions())


def _where_line(condition: str) -> str:
    return f"WHERE {condition}" if condition else ""


def ids_query(condition: str, *, order: str | None, limit: int) -> str:
    """Step 1: the ids of the matching invocations, newest (or oldest) first."""
    return (
        "SELECT\n"
        "            id\n"
        "        FROM sys_invocation inv\n"
        f"        {_where_line(condition)}\n"
        f"        {order or ''}\n"
        f"        LIMIT {limit}"
    )


def count_query(condition: str) -> str:
    """Step 2 (Arrow, Int64): how many invocations match in total."""
    return (
        "SELECT COUNT(1) FROM (SELECT\n"
        "            *\n"
        "        FROM sys_invocation inv\n"
        f"        LIMIT {COUNT_SCAN_LIMIT}\n"
        "        )\n"
        f"        {_where_line(condition)}"
    )


def rows_query(condition: str, ids: Sequence[str], *, order: str | None) -> str:
    """Step 3: the full rows of the ids found in step 1."""
    id_condition = f"inv.id in {in_list(ids)}"
    where = f"{condition} AND {id_condition}" if condition else id_condition
    columns = ",\n".join(f"            {column}" for column in INVOCATION_COLUMNS)
    return (
        "SELECT\n"
        f"{columns}\n"
        "        FROM sys_invocation inv\n"
        "        LEFT JOIN sys_deployment dp ON dp.id = inv.pinned_deployment_id\n"
        f"        WHERE {where}\n"
        f"        {order or ''}"
    )


def by_id_condition(invocation_id: str) -> str:
    return f"inv.id = {quote(invocation_id)}"


def journal_column_count_query(columns: Sequence[str]) -> str:
    """Arrow count: which optional ``sys_journal`` columns this server has."""
    names = ", ".join(quote(c) for c in columns)
    return (
        "SELECT COUNT(*) FROM information_schema.columns\n"
        "            WHERE\n"
        "                table_name = 'sys_journal'\n"
        f"                AND column_name IN ({names})"
    )


PROMISE_NAME_COLUMNS: tuple[str, ...] = ("promise_name",)
ENTRY_JSON_COLUMNS: tuple[str, ...] = ("version", "entry_json", "appended_at")
JOURNAL_LIMIT = 100


def journal_query(
    invocation_id: str,
    *,
    with_promise_name: bool = True,
    with_entry_json: bool = True,
    limit: int = JOURNAL_LIMIT,
) -> str:
    """The newest ``limit`` journal entries of one invocation (newest first)."""
    columns = [
        "sj.index",
        "sj.entry_type",
        "sj.completed",
        "sj.invoked_id",
        "sj.invoked_target",
        "sj.sleep_wakeup_at",
        "sj.name",
    ]
    if with_promise_name:
        columns.append("sj.promise_name")
    if with_entry_json:
        columns.append("sj.version, sj.entry_json, sj.appended_at")
    listed = ",\n".join(f"            {column}" for column in columns)
    return (
        "SELECT\n"
        f"{listed}\n"
        "        FROM sys_journal sj\n"
        "        WHERE\n"
        f"            sj.id = {quote(invocation_id)}\n"
        "        ORDER BY index DESC\n"
        f"        LIMIT {limit}"
    )


# ---- the selection behind the bulk operations -------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One bulk operation: its admin verb and the sys_invocation_status states it affects."""

    verb: str  # the PATCH /invocations/{id}/<verb> path segment
    status_condition: str
    past_tense: str
    # what to tell the user when nothing matched
    nothing_found_hint: str
    keyed_targets_only: bool = False  # pause/resume/restart take no workflow targets


OPERATIONS: dict[str, Operation] = {
    "cancel": Operation(
        "cancel",
        "status != 'completed'",
        "Cancelled",
        "Note that the cancel command only works on non-completed invocations. If you want "
        "to remove a completed invocation, consider using the purge command instead.",
    ),
    "kill": Operation(
        "kill",
        "status != 'completed'",
        "Killed",
        "Note that the kill command only works on non-completed invocations. If you want "
        "to remove a completed invocation, consider using the purge command instead.",
    ),
    "purge": Operation(
        "purge",
        "status = 'completed'",
        "Purged",
        "Note that the purge command only works on completed invocations. If you want to "
        "cancel a not-completed invocation, consider using the cancel command instead.",
    ),
    "pause": Operation(
        "pause",
        "status IN ('invoked', 'suspended')",
        "Paused",
        "Note that the pause command only works on invocations either 'running', "
        "'backing-off' or 'suspended'.",
    ),
    "resume": Operation(
        "resume",
        "status IN ('paused', 'invoked', 'suspended')",
        "Resumed",
        "Note that the resume command only works on invocations either 'paused', "
        "'running', 'backing-off' or 'suspended'.",
    ),
    "restart-as-new": Operation(
        "restart-as-new",
        "status = 'completed'",
        "Restarted",
        "Note that the restart-as-new command only works on completed invocations.",
    ),
}

INVOCATION_ID_PREFIX = "inv_"


def looks_like_invocation_id(query: str) -> bool:
    """``inv_1…`` with a 33-character base62 payload (the real CLI parses it as an id)."""
    if not query.startswith(INVOCATION_ID_PREFIX):
        return False
    payload = query[len(INVOCATION_ID_PREFIX) :]
    return len(payload) == 34 and payload[0] == "1" and payload.isalnum() and payload.isascii()


def target_condition(query: str) -> str:
    """Match an id, or a target given as ``svc``, ``svc/handler|key``, ``svc/key/handler``."""
    if looks_like_invocation_id(query):
        return f"id = {quote(query)}"
    parts = query.split("/")
    if len(parts) == 1:
        return f"target LIKE {quote(query + '/%')}"
    if len(parts) == 2:
        # a plain service's handler, or every handler of an object/workflow key
        return (
            f"((target = {quote(query)} AND target_service_ty = 'service') OR "
            f"(target LIKE {quote(query + '/%')} AND target_service_ty != 'service'))"
        )
    return f"target LIKE {quote(query)}"


def operation_select_query(query: str, operation: Operation, limit: int) -> str:
    """The invocations a bulk operation applies to (JSON: ``id``, ``target``)."""
    return (
        "SELECT id, target FROM sys_invocation_status WHERE "
        f"{target_condition(query)} AND {operation.status_condition} LIMIT {limit}"
    )
