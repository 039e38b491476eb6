"""``restate services status [NAME]``: invocations per handler and status, the busy keys
of objects and workflows, and (for one service) its newest invocations.

The queries are the real CLI's: inboxed invocations per handler (``sys_invocation_status``),
invocations per handler and status (``sys_invocation``), and for keyed services the queue
length per key (``sys_inbox``) and the invocation holding each key.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import click

from restate_cli.client import path_segment
from restate_cli.invocation_queries import list_invocations
from restate_cli.invocation_view import print_summary
from restate_cli.schema_view import Json, flavor, is_keyed
from restate_cli.session import Session, run_watched, session
from restate_cli.settings import common_options, json_option, watch_options
from restate_cli.sql import invocations as inv_sql
from restate_cli.sql import services as sql
from restate_cli.timefmt import ago, human_span, parse_timestamp

SUMMARY_STATUSES = (
    "pending",
    "scheduled",
    "ready",
    "running",
    "backing-off",
    "suspended",
    "paused",
)
# when several statuses are reported for one key, the one holding the key comes first
_HOLDING_ORDER = (
    "running",
    "backing-off",
    "suspended",
    "paused",
    "ready",
    "scheduled",
    "completed",
)


@click.command("status")
@watch_options
@json_option
@click.option("--locked-keys-limit", type=int, default=5, show_default=True)
@click.option("--locked-key-held-threshold-second", type=int, default=5, show_default=True)
@click.option("--sample-invocations-limit", type=int, default=5, show_default=True)
@click.argument("service", required=False)
@common_options
def status(
    service: str | None,
    locked_keys_limit: int,
    locked_key_held_threshold_second: int,
    sample_invocations_limit: int,
    as_json: bool,
    watch: bool,
    interval: float,
) -> None:
    """Prints activity information about a given service (and method)."""
    s = session(json_mode=as_json)
    run_watched(
        lambda: _status(
            s,
            service,
            locked_keys_limit,
            locked_key_held_threshold_second,
            sample_invocations_limit,
            as_json,
        ),
        watch=watch,
        interval=interval,
    )


def summarize(
    services: list[Json], inboxed: list[dict[str, Any]], grouped: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """One entry per handler: counts per status and its oldest non-suspended invocation."""
    per_handler: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in grouped:
        per_handler[
            (str(row.get("target_service_name")), str(row.get("target_handler_name")))
        ].append(row)
    pending = {
        (str(r.get("target_service_name")), str(r.get("target_handler_name"))): int(
            r.get("num_invocations") or 0
        )
        for r in inboxed
    }
    summary = []
    for svc in services:
        name = str(svc.get("name"))
        for handler in sorted(str(h.get("name")) for h in svc.get("handlers", [])):
            rows = per_handler.get((name, handler), [])
            counts = {st: 0 for st in SUMMARY_STATUSES}
            for row in rows:
                if row.get("status") in counts:
                    counts[str(row["status"])] += int(row.get("num_invocations") or 0)
            if (name, handler) in pending:
                counts["pending"] = pending[(name, handler)]
            candidates = [r for r in rows if r.get("status") != "suspended" and r.get("oldest_at")]
            oldest = min(candidates, key=lambda r: str(r["oldest_at"]), default=None)
            summary.append(
                {
                    "service": name,
                    "service_type": svc.get("ty"),
                    "handler": handler,
                    "counts": counts,
                    "oldest_non_suspended": None
                    if oldest is None
                    else {
                        "id": oldest.get("oldest_invocation"),
                        "status": oldest.get("status"),
                        "created_at": oldest.get("oldest_at"),
                    },
                }
            )
    return summary


def active_keys(
    queue: list[dict[str, Any]], holders: list[dict[str, Any]], limit: int
) -> dict[str, list[dict[str, Any]]]:
    """Per keyed service, its keys with queue length and the invocation holding the key."""
    by_key: dict[tuple[str, str], dict[str, Any]] = {}
    rank = {st: i for i, st in enumerate(_HOLDING_ORDER)}
    for row in holders:
        key = (str(row.get("service_name")), str(row.get("service_key")))
        best = by_key.get(key)
        order = rank.get(str(row.get("invocation_status")), len(rank))
        if best is None or order < rank.get(str(best.get("invocation_status")), len(rank)):
            by_key[key] = dict(row)
    for row in queue:
        key = (str(row.get("service_name")), str(row.get("service_key")))
        entry = by_key.setdefault(
            key, {"service_name": key[0], "service_key": key[1], "invocation_status": None}
        )
        entry["num_pending"] = int(row.get("num_pending") or 0)
    per_service: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for (svc, _), entry in by_key.items():
        per_service[svc].append(entry)
    for entries in per_service.values():
        # busiest first: queued invocations, then keys held by a non-completed invocation
        entries.sort(
            key=lambda e: (
                -int(e.get("num_pending") or 0),
                e.get("invocation_status") == "completed",
                str(e.get("service_key")),
            )
        )
        del entries[limit:]
    return dict(per_service)


def _key_note(entry: dict[str, Any], threshold: int, now: datetime) -> str:
    status = entry.get("invocation_status")
    notes = []
    started = parse_timestamp(str(entry.get("last_start_at") or ""))
    created = parse_timestamp(str(entry.get("invocation_created_at") or ""))
    if status in ("running", "backing-off") and started:
        notes.append(f"Current attempt has been in-flight for {human_span(now - started)}.")
    if (
        status not in (None, "completed")
        and created
        and (now - created).total_seconds() > threshold
    ):
        notes.append(f"It's been holding the lock for {human_span(now - created)}.")
    if status == "backing-off":
        retries = int(entry.get("num_retries") or 0)
        next_retry = parse_timestamp(str(entry.get("next_retry_at") or ""))
        note = f"Retried {retries} time(s)."
        if next_retry:
            note += f" Next retry in {human_span(next_retry - now)}."
        notes.append(note)
        if entry.get("last_failure_message"):
            notes.append("Last failure: " + str(entry["last_failure_message"]).splitlines()[0])
    return " ".join(notes)


def _status(
    s: Session,
    service: str | None,
    keys_limit: int,
    held_threshold: int,
    sample_limit: int,
    as_json: bool,
) -> None:
    if service is None:
        services = s.client.get_json("/services").get("services", [])
    else:
        services = [s.client.get_json(f"/services/{path_segment(service)}")]
    names = [str(svc.get("name")) for svc in services]
    keyed = [str(svc.get("name")) for svc in services if is_keyed(svc)]
    summary: list[dict[str, Any]] = []
    keys: dict[str, list[dict[str, Any]]] = {}
    recent: list[dict[str, Any]] = []
    if names:
        inboxed = s.client.query_json(sql.inboxed_per_handler_query(names))
        grouped = s.client.query_json(sql.status_per_handler_query(names))
        summary = summarize(services, inboxed, grouped)
    if service is not None and sample_limit > 0:
        recent = list_invocations(
            s.client,
            sql.recent_invocations_condition(service),
            limit=sample_limit,
            order=inv_sql.NEWEST_FIRST,
            with_count=False,
        ).rows
    if keyed:
        queue = s.client.query_json(sql.inbox_per_key_query(keyed))
        holders = s.client.query_json(sql.key_holders_query(keyed))
        keys = active_keys(queue, holders, keys_limit)
    if as_json:
        s.out.json({"summary": summary, "active_keys": keys, "recent_invocations": recent})
        return
    _print(s, services, summary, keys, recent, held_threshold)


def _print(
    s: Session,
    services: list[Json],
    summary: list[dict[str, Any]],
    keys: dict[str, list[dict[str, Any]]],
    recent: list[dict[str, Any]],
    held_threshold: int,
) -> None:
    now = datetime.now(UTC)
    s.out.heading("Summary")
    table = s.out.new_table(
        ["", *(st.upper() for st in SUMMARY_STATUSES), "OLDEST-NON-SUSPENDED-INVOCATION"]
    )
    types = {str(svc.get("name")): svc.get("ty") for svc in services}
    current = None
    for entry in summary:
        if entry["service"] != current:
            if current is not None:
                s.out.add_row(table, [""] * (len(SUMMARY_STATUSES) + 2))
            current = entry["service"]
            label = f"{current} {flavor(types.get(current))}".rstrip()
            s.out.add_row(table, [label] + [""] * (len(SUMMARY_STATUSES) + 1))
        counts = [
            str(entry["counts"][st]) if entry["counts"][st] else "-" for st in SUMMARY_STATUSES
        ]
        oldest = entry["oldest_non_suspended"]
        oldest_text = "-"
        if oldest:
            created = parse_timestamp(str(oldest.get("created_at") or ""))
            oldest_text = f"{oldest['id']} {oldest['status']} (invoked {ago(created, now)})"
        s.out.add_row(table, [f"  {entry['handler']}", *counts, oldest_text])
    s.out.print(table)
    if keys:
        s.out.line()
        s.out.heading("Active Keys")
        key_table = s.out.new_table(["", "QUEUE", "LOCKED-BY", "HANDLER", "NOTES"])
        for svc, entries in keys.items():
            s.out.add_row(key_table, [f"{svc} ({len(entries)} active keys)", "", "", "", ""])
            for entry in entries:
                holder = entry.get("invocation_holding_lock")
                locked = f"{holder} ({entry.get('invocation_status')})" if holder else "-"
                s.out.add_row(
                    key_table,
                    [
                        f"  {entry.get('service_key')}",
                        str(entry.get("num_pending") or 0),
                        locked,
                        str(entry.get("invocation_method_holding_lock") or ""),
                        _key_note(entry, held_threshold, now),
                    ],
                )
        s.out.print(key_table)
    if recent:
        s.out.line()
        s.out.heading("Recent Invocations")
        for row in recent:
            print_summary(s.out, row, s.settings.time_format, now)
