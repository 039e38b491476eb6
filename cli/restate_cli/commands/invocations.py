"""``restate invocations`` (alias ``inv``): list and describe; the bulk operations and
the live views (``watch``, ``journal``) are in their own modules and attached here."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import click

from restate_cli.commands.invocation_filters import build_filter, filter_options
from restate_cli.commands.invocation_live import journal, watch_invocations
from restate_cli.commands.invocation_ops import operation_commands
from restate_cli.groups import AliasedGroup
from restate_cli.invocation_queries import (
    get_invocation,
    get_journal,
    journal_shape,
    list_invocations,
)
from restate_cli.invocation_view import (
    deployment_text,
    error_text,
    invoked_by,
    print_journal_entry,
    print_journal_head,
    print_journal_tail,
    print_summary,
    status_text,
)
from restate_cli.session import Session, run_watched, session
from restate_cli.settings import common_options, json_option, watch_options
from restate_cli.sql import invocations as sql
from restate_cli.timefmt import ago, format_instant, parse_timestamp


@click.group("invocations", cls=AliasedGroup)
@common_options
def invocations() -> None:
    """Manage active invocations."""


@click.command("list")
@watch_options
@json_option
@filter_options
@click.option(
    "--all",
    "include_all",
    is_flag=True,
    help="Include completed invocations (overrides --status).",
)
@click.option(
    "--completion-result",
    type=click.Choice(["success", "failure"]),
    help="Completed invocations with this result (implies --status completed).",
)
@common_options
def list_command(
    services: tuple[str, ...],
    handlers: tuple[str, ...],
    keys: tuple[str, ...],
    deployments: tuple[str, ...],
    statuses: tuple[str, ...],
    virtual_objects_only: bool,
    zombie: bool,
    limit: int,
    oldest_first: bool,
    include_all: bool,
    completion_result: str | None,
    as_json: bool,
    watch: bool,
    interval: float,
) -> None:
    """List invocations."""
    s = session(json_mode=as_json)
    chosen = build_filter(
        services=services,
        handlers=handlers,
        keys=keys,
        deployments=deployments,
        statuses=statuses,
        virtual_objects_only=virtual_objects_only,
        zombie=zombie,
        include_all=include_all,
        completion_result=completion_result,
    )
    order = sql.OLDEST_FIRST if oldest_first else sql.NEWEST_FIRST
    run_watched(lambda: _list(s, chosen, order, limit, as_json), watch=watch, interval=interval)


def _list(s: Session, chosen: sql.InvocationFilter, order: str, limit: int, as_json: bool) -> None:
    started = time.monotonic()
    page = list_invocations(s.client, chosen.where(), limit=limit, order=order)
    took = (time.monotonic() - started) * 1000
    if as_json:
        s.out.json(page.rows)
        return
    now = datetime.now(UTC)
    for row in page.rows:
        print_summary(s.out, row, s.settings.time_format, now)
    s.out.note(f"Showing {len(page.rows)}/{page.total} invocations. Query took {took:.3f}ms")


@click.command("describe")
@watch_options
@json_option
@click.argument("invocation_id")
@common_options
def describe(invocation_id: str, as_json: bool, watch: bool, interval: float) -> None:
    """Prints detailed information about a given invocation."""
    s = session(json_mode=as_json)
    run_watched(lambda: _describe(s, invocation_id, as_json), watch=watch, interval=interval)


def _describe(s: Session, invocation_id: str, as_json: bool) -> None:
    row = get_invocation(s.client, invocation_id)
    entries = get_journal(s.client, invocation_id, journal_shape(s.client))
    if as_json:
        s.out.json({"invocation": row, "journal": entries})
        return
    style = s.settings.time_format
    created = parse_timestamp(str(row.get("created_at") or ""))
    pairs = [
        ("Created at:", f"{format_instant(created, style)} ({ago(created)})"),
        ("Target:", str(row.get("target"))),
        ("Status:", status_text(row)),
    ]
    if row.get("idempotency_key"):
        pairs.append(("Idempotency key:", str(row["idempotency_key"])))
    caller = invoked_by(row)
    if caller:
        pairs.append(("Invoked by:", caller))
    deployment = deployment_text(row)
    if deployment:
        pairs.append(("Deployment:", deployment))
    error = error_text(row, style)
    if error:
        pairs.append(("Error:", error))
    if row.get("trace_id"):
        pairs.append(("Trace ID:", str(row["trace_id"])))
    if row.get("state_modified_at"):
        modified = parse_timestamp(str(row["state_modified_at"]))
        pairs.append(("Modified at:", format_instant(modified, style)))
    s.out.heading("Invocation Information")
    s.out.kv(pairs)
    if row.get("pinned_deployment_id"):
        s.out.tip(
            f"This invocation is bound to run on deployment '{row['pinned_deployment_id']}'. "
            "To guarantee safety and correctness, invocations that made progress on a "
            "deployment cannot move to newer deployments automatically."
        )
    s.out.line()
    s.out.heading("Invocation Progress")
    print_journal_head(s.out, row)
    for entry in entries:
        print_journal_entry(s.out, entry, style)
    print_journal_tail(s.out, row)


invocations.add_aliased(list_command, ["ls"])
invocations.add_aliased(describe, ["get"])
for _command, _aliases in operation_commands():
    invocations.add_aliased(_command, _aliases)
invocations.add_aliased(watch_invocations)
invocations.add_aliased(journal)
