"""Live views the real CLI lacks, both polling ``/query``:

- ``invocations watch``: the in-flight invocations as a table refreshed every ``--interval``
  seconds (``--once`` prints one snapshot, for scripts);
- ``invocations journal ID [--follow]``: the journal, then (``--follow``) each entry as it is
  appended, until the invocation completes.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Group

from restate_cli.commands.invocation_filters import build_filter, filter_options
from restate_cli.errors import CliError
from restate_cli.invocation_queries import (
    JournalShape,
    get_invocation,
    get_journal,
    journal_shape,
    list_invocations,
)
from restate_cli.invocation_view import (
    deployment_text,
    print_journal_entry,
    print_journal_head,
    print_journal_tail,
    status_of,
)
from restate_cli.render import text
from restate_cli.session import Session, session
from restate_cli.settings import common_options, json_option
from restate_cli.sql import invocations as sql
from restate_cli.timefmt import human_span, parse_timestamp

# ---- watch --------------------------------------------------------------------------------


def _age(row: dict[str, Any], now: datetime) -> str:
    created = parse_timestamp(str(row.get("created_at") or ""))
    return human_span(now - created) if created else "-"


def _first_line(value: Any, width: int = 60) -> str:
    if not value:
        return ""
    line = str(value).strip().splitlines()[0]
    return line if len(line) <= width else line[: width - 1] + "…"


def watch_table(s: Session, rows: list[dict[str, Any]], total: int, interval: float) -> Group:
    now = datetime.now(UTC)
    table = s.out.new_table(
        ["ID", "TARGET", "STATUS", "AGE", "RETRIES", "DEPLOYMENT", "LAST FAILURE"]
    )
    for row in rows:
        s.out.add_row(
            table,
            [
                str(row.get("id")),
                str(row.get("target")),
                status_of(row),
                _age(row, now),
                str(row.get("num_retries") or 0),
                deployment_text(row) or "-",
                _first_line(row.get("last_failure_message") or row.get("completion_failure")),
            ],
        )
    stamp = now.astimezone().strftime("%H:%M:%S")
    header = text(
        f"{len(rows)}/{total} invocations at {stamp}, refreshed every {interval:g}s "
        "(Ctrl-C to stop)"
    )
    return Group(header, table if rows else text("No invocations."))


@click.command("watch")
@json_option
@filter_options
@click.option("--all", "include_all", is_flag=True, help="Include completed invocations.")
@click.option(
    "--interval", type=float, default=1.0, show_default=True, help="Refresh every N seconds."
)
@click.option("--once", is_flag=True, help="Print one snapshot and exit (for scripts).")
@common_options
def watch_invocations(
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
    interval: float,
    once: bool,
    as_json: bool,
) -> None:
    """Live view of the running invocations, refreshed from /query (not in the real CLI)."""
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
    )
    order = sql.OLDEST_FIRST if oldest_first else sql.NEWEST_FIRST

    def snapshot() -> tuple[list[dict[str, Any]], int]:
        page = list_invocations(s.client, chosen.where(), limit=limit, order=order)
        return page.rows, page.total

    interval = max(interval, 0.1)
    if as_json:
        _watch_json(s, snapshot, interval, once)
        return
    if once or not s.out.console.is_terminal:
        while True:
            rows, total = snapshot()
            s.out.print(watch_table(s, rows, total, interval))
            if once:
                return
            time.sleep(interval)
    from rich.live import Live

    rows, total = snapshot()
    try:
        with Live(
            watch_table(s, rows, total, interval), console=s.out.console, auto_refresh=False
        ) as live:
            while True:
                time.sleep(interval)
                rows, total = snapshot()
                live.update(watch_table(s, rows, total, interval), refresh=True)
    except KeyboardInterrupt:
        return


def _watch_json(s: Session, snapshot: Any, interval: float, once: bool) -> None:
    """``--json --once``: the rows; ``--json``: one JSON line per refresh."""
    if once:
        s.out.json(snapshot()[0])
        return
    try:
        while True:
            rows, total = snapshot()
            s.out.raw(json.dumps({"total": total, "invocations": rows}, ensure_ascii=False) + "\n")
            time.sleep(interval)
    except KeyboardInterrupt:
        return


# ---- journal ------------------------------------------------------------------------------


def _emit_entry(s: Session, entry: dict[str, Any], as_json: bool) -> None:
    if as_json:
        s.out.raw(json.dumps(entry, ensure_ascii=False) + "\n")
    else:
        print_journal_entry(s.out, entry, s.settings.time_format)
    sys.stdout.flush()


@click.command("journal")
@json_option
@click.option(
    "-f", "--follow", is_flag=True, help="Keep printing new entries until the invocation completes."
)
@click.option(
    "--interval", type=float, default=1.0, show_default=True, help="Poll every N seconds."
)
@click.option(
    "--timeout",
    type=float,
    default=None,
    help="With --follow: give up (exit 1) after N seconds.",
)
@click.argument("invocation_id")
@common_options
def journal(
    invocation_id: str, follow: bool, interval: float, timeout: float | None, as_json: bool
) -> None:
    """Print an invocation's journal (not in the real CLI); --follow tails it."""
    s = session(json_mode=as_json)
    row = get_invocation(s.client, invocation_id)
    shape = journal_shape(s.client)
    entries = get_journal(s.client, invocation_id, shape)
    if as_json and not follow:
        s.out.json({"invocation": row, "journal": entries})
        return
    if not as_json:
        print_journal_head(s.out, row)
    for entry in entries:
        _emit_entry(s, entry, as_json)
    if follow:
        row = _follow(s, invocation_id, row, entries, shape, interval, timeout, as_json)
    if as_json:
        s.out.raw(json.dumps({"id": invocation_id, "status": status_of(row)}) + "\n")
    else:
        print_journal_tail(s.out, row)


def _follow(
    s: Session,
    invocation_id: str,
    row: dict[str, Any],
    entries: list[dict[str, Any]],
    shape: JournalShape,
    interval: float,
    timeout: float | None,
    as_json: bool,
) -> dict[str, Any]:
    """Poll until completed; print entries with an index above the last one printed."""
    last = max((int(e.get("index") or 0) for e in entries), default=-1)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while status_of(row) != "completed":
            if deadline is not None and time.monotonic() >= deadline:
                raise CliError(
                    f"Invocation {invocation_id} is still {status_of(row)} after {timeout:g}s"
                )
            time.sleep(max(interval, 0.1))
            try:
                row = get_invocation(s.client, invocation_id)
            except CliError:
                # gone while we watched (purged, or not retained after completion)
                return {**row, "status": "completed"}
            for entry in get_journal(s.client, invocation_id, shape):
                if int(entry.get("index") or 0) > last:
                    _emit_entry(s, entry, as_json)
                    last = int(entry.get("index") or 0)
    except KeyboardInterrupt:
        return row
    return row
