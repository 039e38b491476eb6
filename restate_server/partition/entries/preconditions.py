"""Which handlers may use which commands (checked before a command is journaled)."""

from __future__ import annotations

from restate_server.partition.actions import FailAttempt
from restate_server.partition.context import ApplyContext
from restate_server.storage.records import InvocationStatus


def reject(
    ctx: ApplyContext, invocation_id: bytes, status: InvocationStatus, message: str, code: int = 500
) -> None:
    """Fail the running attempt; the command is not journaled and the attempt is retried.

    The epoch moves on, so whatever the failed attempt still sends after this
    command is ignored; the invoker continues with the new epoch.
    """
    status.epoch += 1
    ctx.emit(FailAttempt(invocation_id, status.epoch, code, message))


def can_read_state(status: InvocationStatus) -> bool:
    return status.target.key is not None


def can_write_state(status: InvocationStatus) -> bool:
    return status.target.handler_kind in ("exclusive", "workflow")


def is_workflow(status: InvocationStatus) -> bool:
    return status.target.service_ty == "workflow"


def partition_key_of(invocation_id: bytes) -> int:
    return int.from_bytes(invocation_id[:8], "big")
