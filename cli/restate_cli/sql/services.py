"""Queries of ``services status`` and of the deployment commands (draining checks)."""

from __future__ import annotations

from collections.abc import Sequence

from restate_cli.sql.literals import in_list, quote


def inboxed_per_handler_query(services: Sequence[str]) -> str:
    """Invocations waiting in a key's inbox, per handler (they count as ``pending``)."""
    return (
        "SELECT\n"
        "                target_service_name,\n"
        "                target_handler_name,\n"
        "                'pending' as status,\n"
        "                COUNT(1) as num_invocations,\n"
        "                MIN(created_at) as oldest_at,\n"
        "                FIRST_VALUE(id ORDER BY created_at ASC) as oldest_invocation\n"
        "             FROM sys_invocation_status\n"
        f"             WHERE status == 'inboxed' AND target_service_name IN {in_list(services)}\n"
        "             GROUP BY target_service_name, target_handler_name"
    )


def status_per_handler_query(services: Sequence[str]) -> str:
    """Invocations per handler and status, with the oldest of each group."""
    return (
        "\n"
        "            SELECT\n"
        "                target_service_name,\n"
        "                target_handler_name,\n"
        "                status,\n"
        "                COUNT(1) as num_invocations,\n"
        "                MIN(created_at) as oldest_at,\n"
        "                FIRST_VALUE(id ORDER BY created_at ASC) as oldest_invocation\n"
        "            FROM sys_invocation\n"
        f"            WHERE target_service_name IN {in_list(services)}\n"
        "            GROUP BY target_service_name, target_handler_name, status\n"
        "            ORDER BY target_handler_name"
    )


def inbox_per_key_query(keyed_services: Sequence[str]) -> str:
    """Queue length per object/workflow key."""
    return (
        "SELECT\n"
        "                service_name,\n"
        "                service_key,\n"
        "                COUNT(1) as num_pending\n"
        "             FROM sys_inbox\n"
        f"             WHERE service_name IN {in_list(keyed_services)}\n"
        "             GROUP BY service_name, service_key\n"
        "             ORDER BY num_pending DESC"
    )


def key_holders_query(keyed_services: Sequence[str]) -> str:
    """Per key and status, the invocation holding (or that last held) the key."""
    return (
        "\n"
        "            SELECT\n"
        "                target_service_name as service_name,\n"
        "                target_service_key as service_key,\n"
        "                status as invocation_status,\n"
        "                first_value(id) as invocation_holding_lock,\n"
        "                first_value(target_handler_name) as invocation_method_holding_lock,\n"
        "                first_value(created_at) as invocation_created_at,\n"
        "                first_value(modified_at) as modified_at,\n"
        "                first_value(pinned_deployment_id) as pinned_deployment_id,\n"
        "                first_value(last_attempt_deployment_id) as last_attempt_deployment_id,\n"
        "                first_value(last_failure) as last_failure_message,\n"
        "                first_value(next_retry_at) as next_retry_at,\n"
        "                first_value(last_start_at) as last_start_at,\n"
        "                0 as num_pending,\n"
        "                sum(retry_count) as num_retries\n"
        "            FROM sys_invocation\n"
        "            WHERE status != 'pending' AND target_service_name IN "
        f"{in_list(keyed_services)}\n"
        "            GROUP BY target_service_name, target_service_key, status"
    )


def recent_invocations_condition(service: str) -> str:
    """``services status NAME`` samples the newest invocations of that service."""
    return f"inv.target_service_name = {quote(service)}"


def pinned_invocations_per_handler_query(deployment_id: str) -> str:
    """``deployments remove``: in-flight invocations pinned to the deployment, per handler."""
    return (
        "SELECT\n"
        "            target_service_name as service,\n"
        "            target_handler_name as handler,\n"
        "            COUNT(1) AS inv_count\n"
        "            FROM sys_invocation_status\n"
        f"            WHERE pinned_deployment_id = {quote(deployment_id)} "
        "AND status != 'completed'\n"
        "            GROUP BY pinned_deployment_id, target_service_name, target_handler_name"
    )


def pinned_invocations_count_query(deployment_id: str) -> str:
    """``deployments list --extra`` (Arrow count): in-flight invocations on a deployment."""
    return (
        "SELECT COUNT(1) AS inv_count\n"
        "            FROM sys_invocation_status\n"
        f"            WHERE pinned_deployment_id = {quote(deployment_id)} "
        "AND status != 'completed'"
    )
