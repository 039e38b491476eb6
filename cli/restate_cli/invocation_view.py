"""Invocation rows and journal entries of ``/query``, described for people.

A row is what the real CLI's invocation query selects (``sql.invocations``); only ``id``,
``target``, ``target_service_ty``, ``status``, ``created_at`` and
``pinned_deployment_exists`` are always there, everything else may be missing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from restate_cli.render import BULLET, Output
from restate_cli.timefmt import format_instant, human_span, parse_timestamp

Row = Mapping[str, Any]

KNOWN_STATUSES = (
    "pending",
    "scheduled",
    "ready",
    "running",
    "backing-off",
    "suspended",
    "paused",
    "completed",
)


def _time(row: Row, column: str) -> datetime | None:
    value = row.get(column)
    return parse_timestamp(value) if isinstance(value, str) else None


def status_of(row: Row) -> str:
    status = str(row.get("status") or "unknown")
    return status if status in KNOWN_STATUSES else "unknown"


def is_keyed(row: Row) -> bool:
    return row.get("target_service_ty") in ("virtual_object", "workflow")


def status_text(row: Row, now: datetime | None = None) -> str:
    """``running  (10 seconds and 978 ms)``, ``completed with failure``, …"""
    now = now or datetime.now(UTC)
    status = status_of(row)
    retries = int(row.get("num_retries") or 0)
    if status == "completed":
        result = row.get("completion_result")
        return f"completed with {result}" if result else "completed"
    if status == "running":
        started = _time(row, "last_start_at") or _time(row, "state_modified_at")
        return f"running  ({human_span(now - started)})" if started else "running"
    if status == "suspended":
        notes = []
        since = _time(row, "state_modified_at")
        if since:
            notes.append(f"{human_span(now - since)} ago")
        if is_keyed(row):
            notes.append("The key will not be released until this invocation is complete")
        return "suspended  (" + ". ".join(notes) + ")" if notes else "suspended"
    if status == "backing-off":
        parts = []
        started = _time(row, "last_start_at")
        if started:
            parts.append(human_span(now - started))
        parts.append(f"Retried {retries} time(s)")
        next_retry = _time(row, "next_retry_at")
        if next_retry:
            parts.append(f"Next retry in {human_span(next_retry - now)}")
        return "backing-off  (" + ". ".join(parts) + ")"
    if status == "paused" and retries:
        return f"paused  (after {retries} attempt(s))"
    return status


def deployment_text(row: Row) -> str | None:
    pinned = row.get("pinned_deployment_id")
    server = row.get("last_attempt_server")
    using = f" using {server}" if server and status_of(row) in ("running", "backing-off") else ""
    if pinned:
        tag = "[required]" if row.get("pinned_deployment_exists", True) else "[ZOMBIE]"
        return f"{pinned} {tag}{using}"
    last = row.get("last_attempt_deployment_id")
    if last:
        return f"{last}{using}"
    return None


def error_text(row: Row, time_format: str = "human") -> str | None:
    if status_of(row) == "completed":
        failure = row.get("completion_failure")
        return str(failure) if failure else None
    failure = row.get("last_failure_message")
    if not failure:
        return None
    related = []
    if row.get("last_failure_entry_index") is not None:
        related.append(f"#{row['last_failure_entry_index']}")
    if row.get("last_failure_entry_ty"):
        related.append(str(row["last_failure_entry_ty"]))
    if row.get("last_failure_entry_name"):
        related.append(f"[{row['last_failure_entry_name']}]")
    text = str(failure).rstrip()
    return f"{text}\nWhile executing entry {' '.join(related)}" if related else text


def summary_pairs(row: Row, time_format: str, now: datetime | None = None) -> list[tuple[str, str]]:
    """The lines of one invocation in ``invocations list``."""
    pairs = [("Target:", str(row.get("target"))), ("Status:", status_text(row, now))]
    if row.get("idempotency_key"):
        pairs.append(("Idempotency key:", str(row["idempotency_key"])))
    caller = invoked_by(row)
    if caller:
        pairs.append(("Invoked by:", caller))
    deployment = deployment_text(row)
    if deployment:
        pairs.append(("Deployment:", deployment))
    error = error_text(row, time_format)
    if error:
        pairs.append(("Error:", error))
    return pairs


def print_summary(out: Output, row: Row, time_format: str, now: datetime | None = None) -> None:
    created = format_instant(_time(row, "created_at"), time_format)
    out.line(f"  {BULLET} [{created}] {row.get('id')}")
    out.kv(summary_pairs(row, time_format, now), indent=4)
    out.line()


# ---- journal ------------------------------------------------------------------------------


def _entry_payload(entry: Row) -> Mapping[str, Any]:
    """The inner object of ``entry_json`` (``{"Command": {"SetState": {...}}}``), if any."""
    raw = entry.get("entry_json")
    if not isinstance(raw, str):
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    while isinstance(parsed, dict) and len(parsed) == 1:
        (inner,) = parsed.values()
        if not isinstance(inner, dict):
            break
        parsed = inner
        if any(k in parsed for k in ("key", "name", "result", "wake_up_time", "completion_id")):
            break
    return parsed if isinstance(parsed, dict) else {}


def _call_request(payload: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Target and id of a ``Call``/``OneWayCall`` from its ``entry_json`` (``request``):
    journals of protocol v4+ leave the ``invoked_*`` columns empty."""
    request = payload.get("request")
    if not isinstance(request, dict):
        return None, None
    target = None
    spec = request.get("invocation_target")
    if isinstance(spec, dict) and len(spec) == 1:
        (fields,) = spec.values()
        if isinstance(fields, dict):
            parts = [fields.get("name"), fields.get("key"), fields.get("handler")]
            target = "/".join(str(p) for p in parts if p is not None)
    callee = request.get("invocation_id")
    return target, str(callee) if callee else None


def entry_details(entry: Row, time_format: str, now: datetime | None = None) -> str:
    """What follows the entry type: ``key status``, ``[reserve]``, ``Greeter/greet``, …"""
    now = now or datetime.now(UTC)
    payload = _entry_payload(entry)
    details: list[str] = []
    key = payload.get("key")
    if isinstance(key, str) and key:
        details.append(f"key {key}")
    elif entry.get("promise_name"):
        details.append(f"key {entry['promise_name']}")
    name = entry.get("name") or payload.get("name")
    if name:
        details.append(f"[{name}]")
    target, callee = _call_request(payload)
    target = entry.get("invoked_target") or target
    callee = entry.get("invoked_id") or callee
    if target:
        details.append(str(target))
    if callee:
        details.append(str(callee))
    wake = _time(entry, "sleep_wakeup_at")
    if wake is None and isinstance(payload.get("wake_up_time"), int):
        wake = datetime.fromtimestamp(payload["wake_up_time"] / 1000, UTC)
    if wake is not None:
        left = wake - now
        when = f"{human_span(left)} left" if left.total_seconds() > 0 else "elapsed"
        details.append(f"until {format_instant(wake, time_format)} ({when})")
    result = payload.get("result")
    if isinstance(result, dict) and isinstance(result.get("Failure"), dict):
        failure = result["Failure"]
        details.append(f"failure [{failure.get('code')}] {failure.get('message', '')}".rstrip())
    return " ".join(details)


def entry_line(entry: Row, time_format: str, now: datetime | None = None) -> str:
    appended = _time(entry, "appended_at")
    stamp = f" [{format_instant(appended, time_format)}]" if appended else ""
    details = entry_details(entry, time_format, now)
    return f"#{entry.get('index')}{stamp} {entry.get('entry_type')}" + (
        f" {details}" if details else ""
    )


def invoked_by(row: Row) -> str | None:
    """``FanOut/greetMany inv_…`` for invocations another invocation made."""
    if not row.get("invoked_by_id"):
        return None
    target = row.get("invoked_by_target")
    return f"{target} {row['invoked_by_id']}" if target else str(row["invoked_by_id"])


def caller_line(row: Row) -> str:
    return invoked_by(row) or "[Ingress]"


def print_journal_head(out: Output, row: Row) -> None:
    out.line(caller_line(row))
    out.line(f" └──(this)─> {row.get('target')}")
    out.line("     ▸")


def print_journal_entry(out: Output, entry: Row, time_format: str) -> None:
    out.line(f"     ├──── {entry_line(entry, time_format)}")


def print_journal_tail(out: Output, row: Row) -> None:
    out.line(f"     └────>> {status_of(row)}")


def sorted_entries(entries: Sequence[Row]) -> list[Row]:
    return sorted(entries, key=lambda e: int(e.get("index") or 0))
