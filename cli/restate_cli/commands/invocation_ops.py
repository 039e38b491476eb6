"""``restate invocations cancel|kill|purge|pause|resume|restart-as-new QUERY``.

QUERY is an invocation id or a target (``svc``, ``svc/handler``, ``obj/key``,
``obj/key/handler``). The matching invocations are selected from
``sys_invocation_status`` (the states each operation accepts), shown, confirmed, and then
changed one by one with ``PATCH /invocations/{id}/<verb>``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from restate_cli.client import path_segment
from restate_cli.errors import ApiError, CliError
from restate_cli.session import session
from restate_cli.settings import common_options, json_option
from restate_cli.sql import invocations as sql

QUERY_HELP = (
    "Either an invocation id, or a target string exact match or prefix: serviceName, "
    "serviceName/handler, virtualObjectName, virtualObjectName/key, "
    "virtualObjectName/key/handler, workflowName, workflowName/key, workflowName/key/handler."
)

_PROMPT_VERB = {
    "cancel": "cancel",
    "kill": "kill",
    "purge": "purge",
    "pause": "pause",
    "resume": "resume",
    "restart-as-new": "restart",
}


def run_operation(
    name: str, query: str, limit: int, as_json: bool, params: dict[str, str] | None = None
) -> None:
    s = session(json_mode=as_json)
    operation = sql.OPERATIONS[name]
    found = s.client.query_json(sql.operation_select_query(query, operation, limit))
    if not found:
        raise CliError(f"No invocations found for query {query}! {operation.nothing_found_hint}")
    s.out.table(["ID", "TARGET"], [(str(r.get("id")), str(r.get("target"))) for r in found])
    s.out.line()
    s.confirm(f"Are you sure you want to {_PROMPT_VERB[name]} these invocations?")
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    for row in found:
        invocation_id = str(row.get("id"))
        outcome: dict[str, Any] = {"id": invocation_id, "target": row.get("target")}
        try:
            response = s.client.request(
                "PATCH",
                f"/invocations/{path_segment(invocation_id)}/{operation.verb}",
                params=params,
            )
        except ApiError as exc:
            outcome.update({"ok": False, "status": exc.status, "error": exc.server_message})
            failures.append(f"{invocation_id}: {exc.message}")
            results.append(outcome)
            continue
        outcome.update({"ok": True, "status": response.status})
        if name == "restart-as-new":
            body = response.json() or {}
            outcome["new_invocation_id"] = body.get("new_invocation_id")
        results.append(outcome)
    done = [r for r in results if r["ok"]]
    if as_json:
        s.out.json({"operation": name, "query": query, "invocations": results})
    else:
        s.out.line()
        if done:
            s.out.ok(
                f"{operation.past_tense} {len(done)} invocations"
                + (":" if name == "restart-as-new" else "")
            )
        if name == "restart-as-new" and done:
            s.out.table(
                ["OLD ID", "NEW ID"], [(r["id"], str(r.get("new_invocation_id"))) for r in done]
            )
    if failures:
        for failure in failures:
            s.out.err.print(f"[ERR]: {failure}", markup=False)
        raise CliError(
            f"{len(failures)} of {len(results)} invocations could not be "
            f"{operation.past_tense.lower()}: {failures[0]}"
        )


def _limit_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--limit",
        type=int,
        default=500,
        show_default=True,
        help="Limit the number of fetched invocations.",
    )(f)


def _make(name: str, summary: str) -> click.Command:
    @click.command(name, help=f"{summary}\n\nQUERY: {QUERY_HELP}")
    @common_options
    @json_option
    @_limit_option
    @click.argument("query")
    def command(query: str, limit: int, as_json: bool) -> None:
        run_operation(name, query, limit, as_json)

    return command


@click.command(
    "cancel",
    help="Cancel a given invocation, or a set of invocations, and its children."
    f"\n\nQUERY: {QUERY_HELP}",
)
@json_option
@_limit_option
@click.option("--kill", is_flag=True, help="Ungracefully kill the invocation and its children.")
@click.argument("query")
@common_options
def cancel(query: str, limit: int, kill: bool, as_json: bool) -> None:
    run_operation("kill" if kill else "cancel", query, limit, as_json)


@click.command(
    "resume", help=f"Resume an invocation, or a set of invocations.\n\nQUERY: {QUERY_HELP}"
)
@json_option
@_limit_option
@click.option(
    "--deployment",
    help="Deployment to resume on: a deployment id, 'latest', or 'keep' (the pinned one).",
)
@click.argument("query")
@common_options
def resume(query: str, limit: int, deployment: str | None, as_json: bool) -> None:
    run_operation(
        "resume", query, limit, as_json, {"deployment": deployment} if deployment else None
    )


def operation_commands() -> list[tuple[click.Command, list[str]]]:
    """The commands with their aliases, in the real CLI's order."""
    return [
        (cancel, []),
        (_make("kill", "Kill a given invocation, or a set of invocations, and its children."), []),
        (
            _make(
                "purge",
                "Purge a completed invocation, or a set of invocations. Affects only "
                "completed invocations.",
            ),
            ["rm"],
        ),
        (
            _make(
                "restart-as-new",
                "Restart a completed invocation, or a set of invocations, as a new invocation "
                "with the same input. Affects only completed invocations (not workflows).",
            ),
            ["restart"],
        ),
        (resume, []),
        (_make("pause", "Pause an invocation, or a set of invocations."), []),
    ]
