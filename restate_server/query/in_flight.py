"""The invoker's view of the invocations it runs: what ``sys_invocation_state`` shows.

As in the real server, this lives in memory only (retry counts, the last failure, the
next retry time). It is copied on the event loop when a query starts, so the query's
thread never reads objects the loop is changing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from restate_server.protocol.messages import SHORT_NAMES, is_command

# InvocationErrorCode names the real server prints in ``[500 Internal] message``
_CODE_NAMES = {
    400: "Bad request",
    404: "Not found",
    409: "Aborted",
    410: "Gone",
    415: "Unsupported media type",
    470: "Not ready",
    500: "Internal",
    570: "Journal mismatch",
    571: "Protocol violation",
    572: "Awaiting two async results",
    573: "Unsupported feature",
}


class InvokerState(msgspec.Struct, frozen=True, kw_only=True):
    """One row of ``sys_invocation_state``."""

    in_flight: bool
    retry_count: int
    last_start_at: int | None = None
    next_retry_at: int | None = None
    last_attempt_deployment_id: str | None = None
    last_attempt_server: str | None = None
    last_failure: str | None = None
    last_failure_error_code: str | None = None
    last_failure_related_command_index: int | None = None
    last_failure_related_command_name: str | None = None
    last_failure_related_command_type: str | None = None


def error_code_text(code: int) -> str:
    name = _CODE_NAMES.get(code)
    return f"{code} {name}" if name else str(code)


def format_failure(code: int, message: str, stacktrace: str | None) -> str:
    """How the real server prints an invocation error: ``[500 Internal] boom\\n<stack>``."""
    text = f"[{error_code_text(code)}] {message}"
    return f"{text}\n{stacktrace}" if stacktrace else text


def entry_type_name(type_id: int | None) -> str | None:
    """``Command: Run`` for a protocol message type id (journal v2 entry type names)."""
    if type_id is None:
        return None
    name = SHORT_NAMES.get(type_id)
    if name is None:
        return None
    return f"Command: {name}" if is_command(type_id) else f"Notification: {name}"


def _server_of(task: Any) -> str | None:
    """The SDK's ``x-restate-server``: of the running attempt once it answered, else of the
    last one."""
    attempt = task.attempt
    running = getattr(attempt, "sdk_server", None) if attempt is not None else None
    return running or task.last_attempt_server  # type: ignore[no-any-return]


def capture(tasks: Iterable[Any]) -> dict[bytes, InvokerState]:
    """Copy the state of the invoker's tasks (``Invoker.tasks.values()``), on the loop."""
    states: dict[bytes, InvokerState] = {}
    for task in tasks:
        failure = task.last_failure
        related: dict[str, Any] = {}
        text = None
        if failure is not None:
            text = format_failure(failure.code, failure.message, failure.stacktrace)
            name = failure.related_command_name
            related = {
                "last_failure_error_code": failure.doc_code,
                "last_failure_related_command_index": failure.related_command_index,
                "last_failure_related_command_name": name or None,
                "last_failure_related_command_type": entry_type_name(failure.related_command_type),
            }
        states[task.invocation_id] = InvokerState(
            # between attempts (backing off) a next retry time is set
            in_flight=task.next_retry_at is None,
            # the real server counts attempts: 1 while the first one runs
            retry_count=task.attempt_number,
            last_start_at=task.last_start_at,
            next_retry_at=task.next_retry_at,
            last_attempt_deployment_id=task.last_attempt_deployment_id,
            last_attempt_server=_server_of(task),
            last_failure=text,
            **related,
        )
    return states
