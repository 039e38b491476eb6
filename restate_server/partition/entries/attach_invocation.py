"""AttachInvocationCommand / GetInvocationOutputCommand: wait for, or read, another
invocation's result."""

from __future__ import annotations

from restate_server.partition.commands import AttachInvocation, JournalCommand
from restate_server.partition.context import ApplyContext
from restate_server.partition.entries.preconditions import reject
from restate_server.protocol import ids
from restate_server.protocol import messages as pm
from restate_server.storage.records import InvocationStatus


def apply(ctx: ApplyContext, status: InvocationStatus, command: JournalCommand) -> None:
    message = command.message
    try:
        target = _target_id(message)
    except ValueError as exc:
        reject(ctx, command.invocation_id, status, f"invalid attach target: {exc}")
        return
    ctx.append_entry(command.invocation_id, status, command.type_id, command.body)
    wait = command.type_id == pm.AttachInvocationCommandMessage.TYPE
    raw = target.to_bytes()
    ctx.deliver_to_invocation(
        raw, AttachInvocation(raw, command.invocation_id, message.result_completion_id, wait)
    )


def _target_id(message: pm.Message) -> ids.InvocationId:
    if message.invocation_id is not None:
        return ids.InvocationId.from_str(message.invocation_id)
    if message.workflow_target is not None:
        wf = message.workflow_target
        return ids.workflow_invocation_id(wf.workflow_name, wf.workflow_key)
    if message.idempotent_request_target is not None:
        t = message.idempotent_request_target
        return ids.idempotent_invocation_id(
            t.service_name, t.service_key, t.handler_name, t.idempotency_key
        )
    raise ValueError("no target")
