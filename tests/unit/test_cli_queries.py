"""Our CLI sends the real CLI 1.7.12's SQL text (captured between it and restate-server
1.7.12; see shared/docs/ground-truth/cli-requests.md)."""

from __future__ import annotations

import pytest

from restate_cli.sql import invocations as sql
from restate_cli.sql import services as service_sql
from restate_cli.sql import state as state_sql

F = sql.InvocationFilter
INV_A = "inv_1dTsTd1TAKSz6kfVwXqh8md2FvxPhEPx7S"
INV_B = "inv_1dTsTd1TAKSz7HXxJUCZxDDF5dZM11GktH"
INV_W = "inv_13LDyKBxySeZ30yZLODEII9Eqj5rfUJMu4"

ROWS_COLUMNS = (
    "SELECT\n            inv.id,\n            inv.target,\n            inv.target_service_ty,\n"
    "            inv.idempotency_key,\n            inv.status,\n            inv.created_at,\n"
    "            inv.modified_at as state_modified_at,\n            inv.pinned_deployment_id,\n"
    "            inv.retry_count as num_retries,\n"
    "            inv.last_failure as last_failure_message,\n"
    "            inv.last_failure_related_entry_index as last_failure_entry_index,\n"
    "            inv.last_failure_related_entry_name as last_failure_entry_name,\n"
    "            inv.last_failure_related_entry_type as last_failure_entry_ty,\n"
    "            inv.last_attempt_deployment_id,\n            inv.last_attempt_server,\n"
    "            inv.next_retry_at,\n            inv.last_start_at,\n"
    "            inv.invoked_by_id,\n            inv.invoked_by_target,\n"
    "            inv.trace_id,\n            inv.completion_result,\n"
    "            inv.completion_failure,\n"
    "            dp.id IS NOT NULL as pinned_deployment_exists\n"
    "        FROM sys_invocation inv\n"
    "        LEFT JOIN sys_deployment dp ON dp.id = inv.pinned_deployment_id\n"
)


def test_list_with_filters_is_the_real_three_query_form() -> None:
    where = F(services=["Counter"], keys=["q1"], statuses=["pending"]).where()
    assert sql.ids_query(where, order=sql.NEWEST_FIRST, limit=100) == (
        "SELECT\n            id\n        FROM sys_invocation inv\n        WHERE "
        "inv.target_service_name IN ('Counter') AND inv.target_service_key IN ('q1') "
        "AND status IN ('pending')\n        ORDER BY inv.created_at DESC, inv.id\n"
        "        LIMIT 100"
    )
    assert sql.count_query(where) == (
        "SELECT COUNT(1) FROM (SELECT\n            *\n        FROM sys_invocation inv\n"
        "        LIMIT 50000\n        )\n        WHERE inv.target_service_name IN ('Counter') "
        "AND inv.target_service_key IN ('q1') AND status IN ('pending')"
    )
    assert sql.rows_query(where, [INV_A, INV_B], order=sql.NEWEST_FIRST) == (
        ROWS_COLUMNS + "        WHERE inv.target_service_name IN ('Counter') AND "
        "inv.target_service_key IN ('q1') AND status IN ('pending') AND inv.id in "
        f"('{INV_A}','{INV_B}')\n        ORDER BY inv.created_at DESC, inv.id"
    )


def test_list_defaults_and_all() -> None:
    assert F().where() == "status != 'completed'"
    # --all drops the status condition, leaving empty WHERE lines as the real CLI does
    assert F(include_all=True, statuses=["paused"]).where() == ""
    assert sql.ids_query("", order=sql.NEWEST_FIRST, limit=5) == (
        "SELECT\n            id\n        FROM sys_invocation inv\n        \n"
        "        ORDER BY inv.created_at DESC, inv.id\n        LIMIT 5"
    )
    assert sql.count_query("") == (
        "SELECT COUNT(1) FROM (SELECT\n            *\n        FROM sys_invocation inv\n"
        "        LIMIT 50000\n        )\n        "
    )
    assert sql.rows_query("", [INV_A], order=sql.OLDEST_FIRST).endswith(
        f"        WHERE inv.id in ('{INV_A}')\n        ORDER BY inv.created_at ASC, inv.id"
    )


def test_filter_order_matches_the_real_cli() -> None:
    everything = F(
        services=["Counter"],
        handlers=["add"],
        keys=["k1"],
        deployments=["dp_1"],
        statuses=["running"],
        virtual_objects_only=True,
        zombie=True,
    )
    assert everything.where() == (
        "inv.target_service_name IN ('Counter') AND inv.target_handler_name IN ('add') AND "
        "inv.target_service_key IN ('k1') AND inv.target_service_name IN "
        "(select name from sys_service where ty = 'virtual_object') AND "
        "(inv.pinned_deployment_id IS NOT NULL AND inv.pinned_deployment_id NOT IN "
        "(select id from sys_deployment)) AND (inv.pinned_deployment_id IN ('dp_1') OR "
        "inv.last_attempt_deployment_id IN ('dp_1')) AND status IN ('running')"
    )
    assert F(completion_result="failure").where() == (
        "status = 'completed' AND inv.completion_result = 'failure'"
    )
    assert F(services=["A", "B"], statuses=["running", "suspended"]).where() == (
        "inv.target_service_name IN ('A','B') AND status IN ('running','suspended')"
    )
    assert F(zombie=True, include_all=True).where() == (
        "(inv.pinned_deployment_id IS NOT NULL AND inv.pinned_deployment_id NOT IN "
        "(select id from sys_deployment))"
    )


def test_describe_queries() -> None:
    condition = sql.by_id_condition(INV_W)
    assert sql.ids_query(condition, order=None, limit=1) == (
        "SELECT\n            id\n        FROM sys_invocation inv\n"
        f"        WHERE inv.id = '{INV_W}'\n        \n        LIMIT 1"
    )
    assert sql.rows_query(condition, [INV_W], order=None) == (
        ROWS_COLUMNS + f"        WHERE inv.id = '{INV_W}' AND inv.id in ('{INV_W}')\n        "
    )
    assert sql.journal_column_count_query(sql.ENTRY_JSON_COLUMNS) == (
        "SELECT COUNT(*) FROM information_schema.columns\n            WHERE\n"
        "                table_name = 'sys_journal'\n"
        "                AND column_name IN ('version', 'entry_json', 'appended_at')"
    )
    assert sql.journal_query(INV_W) == (
        "SELECT\n            sj.index,\n            sj.entry_type,\n            sj.completed,\n"
        "            sj.invoked_id,\n            sj.invoked_target,\n"
        "            sj.sleep_wakeup_at,\n            sj.name,\n            sj.promise_name,\n"
        "            sj.version, sj.entry_json, sj.appended_at\n        FROM sys_journal sj\n"
        f"        WHERE\n            sj.id = '{INV_W}'\n        ORDER BY index DESC\n"
        "        LIMIT 100"
    )
    old = sql.journal_query(INV_W, with_promise_name=False, with_entry_json=False)
    assert "promise_name" not in old and "entry_json" not in old
    assert "            sj.name\n        FROM sys_journal sj" in old


@pytest.mark.parametrize(
    ("query", "operation", "expected"),
    [
        (
            "inv_12Ux9uywBb4Y0hJGxbrkeUPwUiZhhMMdhk",
            "cancel",
            "SELECT id, target FROM sys_invocation_status WHERE "
            "id = 'inv_12Ux9uywBb4Y0hJGxbrkeUPwUiZhhMMdhk' AND status != 'completed' LIMIT 500",
        ),
        (
            "Signup/u3",
            "cancel",
            "SELECT id, target FROM sys_invocation_status WHERE ((target = 'Signup/u3' AND "
            "target_service_ty = 'service') OR (target LIKE 'Signup/u3/%' AND "
            "target_service_ty != 'service')) AND status != 'completed' LIMIT 500",
        ),
        (
            "Counter",
            "kill",
            "SELECT id, target FROM sys_invocation_status WHERE target LIKE 'Counter/%' "
            "AND status != 'completed' LIMIT 500",
        ),
        (
            "Payment/p1/run",
            "purge",
            "SELECT id, target FROM sys_invocation_status WHERE target LIKE 'Payment/p1/run' "
            "AND status = 'completed' LIMIT 500",
        ),
        (
            "inv_1jUKhKRxmLm51e4KzCXEU12wYiH6qwk22U",
            "pause",
            "SELECT id, target FROM sys_invocation_status WHERE "
            "id = 'inv_1jUKhKRxmLm51e4KzCXEU12wYiH6qwk22U' AND status IN "
            "('invoked', 'suspended') LIMIT 500",
        ),
        (
            "inv_1jUKhKRxmLm51e4KzCXEU12wYiH6qwk22U",
            "resume",
            "SELECT id, target FROM sys_invocation_status WHERE "
            "id = 'inv_1jUKhKRxmLm51e4KzCXEU12wYiH6qwk22U' AND status IN "
            "('paused', 'invoked', 'suspended') LIMIT 500",
        ),
        (
            "inv_1jE7ZYejNpQA0l5v523b0hdUu1G8CeZeCo",
            "restart-as-new",
            "SELECT id, target FROM sys_invocation_status WHERE "
            "id = 'inv_1jE7ZYejNpQA0l5v523b0hdUu1G8CeZeCo' AND status = 'completed' LIMIT 500",
        ),
    ],
)
def test_operation_selection(query: str, operation: str, expected: str) -> None:
    assert sql.operation_select_query(query, sql.OPERATIONS[operation], 500) == expected


def test_invocation_id_recognition() -> None:
    assert sql.looks_like_invocation_id("inv_1jE7ZYejNpQA0l5v523b0hdUu1G8CeZeCo")
    assert not sql.looks_like_invocation_id("inv_short")
    assert not sql.looks_like_invocation_id("Greeter/greet")
    # quotes in user input never break out of the literal
    assert sql.target_condition("it's") == "target LIKE 'it''s/%'"


def test_state_queries() -> None:
    assert state_sql.state_of_key_query("Counter", "k1") == (
        "select key, value from state where service_name = 'Counter' and service_key = 'k1' ;"
    )
    assert state_sql.state_to_clear_query("Counter", "k1") == (
        "SELECT service_name, service_key, key, value FROM state WHERE "
        "service_name = 'Counter' AND service_key = 'k1'"
    )
    assert state_sql.state_to_clear_query("Counter", None) == (
        "SELECT service_name, service_key, key, value FROM state WHERE service_name = 'Counter'"
    )


def test_service_status_and_deployment_queries() -> None:
    names = ["Signup", "Counter", "Greeter"]
    assert service_sql.inboxed_per_handler_query(names) == (
        "SELECT\n                target_service_name,\n                target_handler_name,\n"
        "                'pending' as status,\n                COUNT(1) as num_invocations,\n"
        "                MIN(created_at) as oldest_at,\n"
        "                FIRST_VALUE(id ORDER BY created_at ASC) as oldest_invocation\n"
        "             FROM sys_invocation_status\n"
        "             WHERE status == 'inboxed' AND target_service_name IN "
        "('Signup','Counter','Greeter')\n"
        "             GROUP BY target_service_name, target_handler_name"
    )
    assert service_sql.status_per_handler_query(names).startswith("\n            SELECT\n")
    assert service_sql.status_per_handler_query(names).endswith(
        "            GROUP BY target_service_name, target_handler_name, status\n"
        "            ORDER BY target_handler_name"
    )
    assert service_sql.inbox_per_key_query(["Signup", "Counter"]) == (
        "SELECT\n                service_name,\n                service_key,\n"
        "                COUNT(1) as num_pending\n             FROM sys_inbox\n"
        "             WHERE service_name IN ('Signup','Counter')\n"
        "             GROUP BY service_name, service_key\n             ORDER BY num_pending DESC"
    )
    holders = service_sql.key_holders_query(["Signup", "Counter"])
    assert (
        "            WHERE status != 'pending' AND target_service_name IN ('Signup','Counter')\n"
        "            GROUP BY target_service_name, target_service_key, status"
    ) in holders
    assert service_sql.pinned_invocations_per_handler_query("dp_10UDT2TKPXUQpxbRXeXPJfj") == (
        "SELECT\n            target_service_name as service,\n"
        "            target_handler_name as handler,\n            COUNT(1) AS inv_count\n"
        "            FROM sys_invocation_status\n"
        "            WHERE pinned_deployment_id = 'dp_10UDT2TKPXUQpxbRXeXPJfj' AND "
        "status != 'completed'\n"
        "            GROUP BY pinned_deployment_id, target_service_name, target_handler_name"
    )
    assert service_sql.pinned_invocations_count_query("dp_1") == (
        "SELECT COUNT(1) AS inv_count\n            FROM sys_invocation_status\n"
        "            WHERE pinned_deployment_id = 'dp_1' AND status != 'completed'"
    )
