"""``/invocations/{id}/...``: cancel, kill, purge, pause, resume, restart-as-new.

The work is done by the partitions; the admin API only needs an ``InvocationAdmin``
handle that says what happened, and turns that into the real server's statuses and
messages. Without a handle these routes answer 501.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Protocol

from restate_server.admin.errors import (
    ApiError,
    empty_response,
    invalid_field,
    json_response,
)
from restate_server.admin.extract import query_error, query_fields
from restate_server.admin.routing import Call, Router
from restate_server.http_server import Response
from restate_server.schema.ids import IdError, check_deployment_id, check_invocation_id


class InvocationOutcome(enum.Enum):
    DONE = "done"  # 200
    ACCEPTED = "accepted"  # 202: will happen asynchronously
    NOT_FOUND = "not_found"
    ALREADY_COMPLETED = "already_completed"  # cancel/kill of a completed invocation
    NOT_COMPLETED = "not_completed"  # purge of a running one
    NOT_RUNNING = "not_running"  # pause
    COMPLETED = "completed"  # resume of a completed one
    NOT_STARTED = "not_started"  # resume/restart of an inboxed or scheduled one
    STILL_RUNNING = "still_running"  # restart-as-new
    INPUT_UNAVAILABLE = "input_unavailable"  # restart-as-new after the journal is gone
    UNSUPPORTED = "unsupported"  # restart-as-new of a workflow
    DEPLOYMENT_NOT_FOUND = "deployment_not_found"  # restart-as-new ?deployment=
    INCOMPATIBLE_DEPLOYMENT = "incompatible_deployment"  # ... not speaking the pinned protocol
    JOURNAL_INDEX_OUT_OF_RANGE = "journal_index_out_of_range"  # restart-as-new ?from=
    JOURNAL_COPY_RANGE_INVALID = "journal_copy_range_invalid"  # ... a command lacks completions


@dataclass(frozen=True)
class RestartAsNewResult:
    outcome: InvocationOutcome
    new_invocation_id: str | None = None
    # INCOMPATIBLE_DEPLOYMENT: pinned_protocol_version, deployment_id, min/max_protocol_version
    details: dict[str, Any] | None = None


class InvocationAdmin(Protocol):
    """What the admin API needs from the partitions.

    Optional extras, used when present: ``purge_journal(id)``,
    ``restart_as_new(id, copy_prefix_up_to: int, deployment: str) -> RestartAsNewResult``
    (deployment "keep", "latest" or an id) and
    ``modify_state(service, key, new_state: dict[str, bytes], version: str | None)``.
    """

    async def cancel(self, invocation_id: str) -> InvocationOutcome: ...

    async def kill(self, invocation_id: str) -> InvocationOutcome: ...

    async def purge(self, invocation_id: str) -> InvocationOutcome: ...

    async def pause(self, invocation_id: str) -> InvocationOutcome: ...

    async def resume(
        self, invocation_id: str, deployment: str | None = None
    ) -> InvocationOutcome: ...


def _message(outcome: InvocationOutcome, invocation_id: str, operation: str) -> ApiError:
    quoted = f"'{invocation_id}'"
    if outcome is InvocationOutcome.NOT_FOUND:
        return ApiError(404, f"The requested invocation {quoted} does not exist")
    if outcome is InvocationOutcome.ALREADY_COMPLETED:
        return ApiError(409, f"The invocation {quoted} was already completed.")
    if outcome is InvocationOutcome.NOT_COMPLETED:
        return ApiError(409, f"The invocation {quoted} is not yet completed.")
    if outcome is InvocationOutcome.NOT_RUNNING:
        return ApiError(409, f"The invocation {quoted} is not running, cannot be paused.")
    if outcome is InvocationOutcome.COMPLETED:
        return ApiError(409, f"The invocation {quoted} is completed, cannot be resumed.")
    if outcome is InvocationOutcome.NOT_STARTED:
        if operation == "restart-as-new":
            return ApiError(
                425, f"The invocation {quoted} cannot be restarted because it's not running yet."
            )
        return ApiError(
            425, f"The invocation {quoted} is either inboxed or scheduled, cannot be resumed."
        )
    if outcome is InvocationOutcome.STILL_RUNNING:
        return ApiError(409, f"The invocation {quoted} is still running.")
    if outcome is InvocationOutcome.INPUT_UNAVAILABLE:
        return ApiError(
            410,
            f"The invocation {quoted} cannot be restarted because the input is not available. "
            "This indicates that the journal was already purged, or not retained at all.",
        )
    if outcome is InvocationOutcome.DEPLOYMENT_NOT_FOUND:
        return ApiError(
            400,
            "The given deployment was not found when trying to restart as new the invocation "
            f"{quoted}.",
        )
    if outcome is InvocationOutcome.JOURNAL_INDEX_OUT_OF_RANGE:
        return ApiError(
            400,
            f"The given index is out of range of currently stored journal for invocation {quoted}.",
        )
    if outcome is InvocationOutcome.JOURNAL_COPY_RANGE_INVALID:
        return ApiError(
            400,
            f"The prefix of the journal {quoted} up to 'from' (included) contains some "
            "Commands without respective Completions.",
        )
    return ApiError(
        422,
        f"Restarting the invocation {quoted} is not supported. Restarting workflows is not "
        "supported, and restarting invocations created using the old service protocol.",
    )


def _invocation_id(call: Call) -> str:
    value = call.params["invocation_id"]
    try:
        check_invocation_id(value)
    except IdError as exc:
        raise invalid_field("invocation_id", str(exc)) from None
    return value


def _handle(call: Call, method: str) -> object:
    handle = call.state.invocations
    if handle is None or getattr(handle, method, None) is None:
        raise ApiError(501, "Invocation management is not available on this server")
    return getattr(handle, method)


def _reply(outcome: InvocationOutcome, invocation_id: str, operation: str) -> Response:
    if outcome is InvocationOutcome.DONE:
        return empty_response(200)
    if outcome is InvocationOutcome.ACCEPTED:
        return empty_response(202)
    raise _message(outcome, invocation_id, operation)


def _simple(operation: str, method: str):  # type: ignore[no-untyped-def]
    async def route(call: Call) -> Response:
        invocation_id = _invocation_id(call)
        action = _handle(call, method)
        outcome = await action(invocation_id)  # type: ignore[operator]
        return _reply(outcome, invocation_id, operation)

    return route


async def resume(call: Call) -> Response:
    # the query is extracted before the handler parses the id, the deployment after it
    raw_deployment = query_fields(call.request, "deployment").get("deployment")
    invocation_id = _invocation_id(call)
    deployment = None if raw_deployment is None else _deployment_choice(raw_deployment)
    action = _handle(call, "resume")
    outcome = await action(invocation_id, deployment)  # type: ignore[operator]
    return _reply(outcome, invocation_id, "resume")


def _restart_query(call: Call) -> tuple[int, str]:
    """``?from=<u32>&deployment=...`` as the framework extracts them (text/plain 400s)."""
    seen = query_fields(call.request, "from", "deployment")
    copy_prefix_up_to = 0
    if "from" in seen:
        copy_prefix_up_to = _parse_u32("from", seen["from"])
    return copy_prefix_up_to, seen.get("deployment", "Latest")


def _deployment_choice(value: str) -> str:
    """``Keep``/``Latest`` (either case) or a deployment id: "keep", "latest" or the id."""
    if value in ("Keep", "keep", "Latest", "latest"):
        return value.lower()
    try:
        check_deployment_id(value)
    except IdError as exc:
        raise ApiError(400, f"The query parameter 'deployment' is invalid. Reason: {exc}") from None
    return value


def _parse_u32(name: str, value: str) -> int:
    """Rust's ``u32::from_str`` with its error texts (an optional ``+``, decimal digits)."""
    digits = value[1:] if value.startswith("+") else value
    if not value:
        reason = "cannot parse integer from empty string"
    elif not digits.isascii() or not digits.isdigit():
        reason = "invalid digit found in string"
    elif int(digits) > 0xFFFF_FFFF:
        reason = "number too large to fit in target type"
    else:
        return int(digits)
    raise query_error(f"{name}: {reason}")


def _incompatible_deployment(invocation_id: str, details: dict[str, Any]) -> ApiError:
    low, high = details["min_protocol_version"], details["max_protocol_version"]
    return ApiError(
        400,
        f"The invocation '{invocation_id}' is running on protocol version "
        f"'{details['pinned_protocol_version']}', while the chosen deployment "
        f"'{details['deployment_id']}' supports the range {low}..={high}.",
    )


async def restart_as_new(call: Call) -> Response:
    # the query is extracted before the handler parses the id, the deployment after it
    copy_prefix_up_to, raw_deployment = _restart_query(call)
    invocation_id = _invocation_id(call)
    deployment = _deployment_choice(raw_deployment)
    action = _handle(call, "restart_as_new")
    result = await action(invocation_id, copy_prefix_up_to, deployment)  # type: ignore[operator]
    assert isinstance(result, RestartAsNewResult)
    if result.outcome is InvocationOutcome.DONE:
        return json_response({"new_invocation_id": result.new_invocation_id})
    if result.outcome is InvocationOutcome.INCOMPATIBLE_DEPLOYMENT and result.details:
        raise _incompatible_deployment(invocation_id, result.details)
    raise _message(result.outcome, invocation_id, "restart-as-new")


# the variants the real server's ``mode`` accepts (each with a lower-case alias)
_DELETE_MODES = {
    "Cancel": "cancel",
    "cancel": "cancel",
    "Kill": "kill",
    "kill": "kill",
    "Purge": "purge",
    "purge": "purge",
}


async def delete_invocation(call: Call) -> Response:
    """The deprecated form: ``DELETE /invocations/{id}?mode=Cancel|Kill|Purge`` answers 202."""
    # the query is extracted before the handler parses the id
    mode = query_fields(call.request, "mode").get("mode", "Cancel")
    method = _DELETE_MODES.get(mode)
    if method is None:
        raise query_error(
            f"mode: unknown variant `{mode}`, expected one of "
            "`Cancel`, `cancel`, `Kill`, `kill`, `Purge`, `purge`"
        )
    invocation_id = _invocation_id(call)
    action = _handle(call, method)
    await action(invocation_id)  # type: ignore[operator]
    return empty_response(202)


def add_routes(router: Router) -> None:
    router.add("DELETE", "/invocations/{invocation_id}", delete_invocation)
    router.add("PATCH", "/invocations/{invocation_id}/kill", _simple("kill", "kill"))
    router.add("PATCH", "/invocations/{invocation_id}/cancel", _simple("cancel", "cancel"))
    router.add("PATCH", "/invocations/{invocation_id}/purge", _simple("purge", "purge"))
    router.add(
        "PATCH",
        "/invocations/{invocation_id}/purge-journal",
        _simple("purge-journal", "purge_journal"),
    )
    router.add("PATCH", "/invocations/{invocation_id}/restart-as-new", restart_as_new)
    router.add("PATCH", "/invocations/{invocation_id}/resume", resume)
    router.add("PATCH", "/invocations/{invocation_id}/pause", _simple("pause", "pause"))
