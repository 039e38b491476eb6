"""CallCommand and OneWayCallCommand: start another invocation.

The callee's id is fixed here (and reported in the CallInvocationId
notification), so replays and re-deliveries never create a second callee.
"""

from __future__ import annotations

import hashlib

from restate_server.partition import journal_messages
from restate_server.partition.commands import InvocationRequest, Invoke, JournalCommand
from restate_server.partition.context import ApplyContext
from restate_server.partition.entries.preconditions import reject
from restate_server.protocol import ids
from restate_server.protocol import messages as pm
from restate_server.storage.records import CallerSink, InvocationStatus, Target

_SERVICE_TY = {"Service": "service", "VirtualObject": "virtual_object", "Workflow": "workflow"}
_HANDLER_KIND = {"Exclusive": "exclusive", "Shared": "shared", "Workflow": "workflow"}


def apply(ctx: ApplyContext, status: InvocationStatus, command: JournalCommand) -> None:
    message = command.message
    is_call = command.type_id == pm.CallCommandMessage.TYPE
    caller_id = command.invocation_id

    resolved = _resolve_target(ctx, message.service_name, message.handler_name, message.key)
    if isinstance(resolved, str):
        reject(ctx, caller_id, status, resolved)
        return
    target, info = resolved
    idempotency_key = message.idempotency_key
    if idempotency_key is not None and idempotency_key == "":
        reject(ctx, caller_id, status, "the idempotency key must not be empty")
        return

    index = ctx.append_entry(caller_id, status, command.type_id, command.body)
    callee = _callee_id(caller_id, index, target, idempotency_key)
    callee_str = str(callee)
    notification_idx = message.invocation_id_notification_idx
    type_id, body = journal_messages.notification(
        pm.CallInvocationIdCompletionNotificationMessage,
        completion_id=notification_idx,
        invocation_id=callee_str,
    )
    ctx.append_notification(caller_id, status, type_id, body, completion_id=notification_idx)

    completion_retention = 0
    if target.handler_kind == "workflow":
        completion_retention = info.workflow_completion_retention_ms
    elif idempotency_key is not None:
        completion_retention = info.idempotency_retention_ms
    execution_time = None
    if not is_call and message.invoke_time and message.invoke_time > ctx.now:
        execution_time = message.invoke_time
    request = InvocationRequest(
        invocation_id=callee.to_bytes(),
        target=target,
        argument=message.parameter or b"",
        headers=[(h.key, h.value) for h in message.headers],
        idempotency_key=idempotency_key,
        execution_time=execution_time,
        sink=CallerSink(caller_id, message.result_completion_id, "call") if is_call else None,
        invoked_by="service",
        invoked_by_id=caller_id,
        invoked_by_target=status.target.display(),
        completion_retention_ms=completion_retention,
        journal_retention_ms=info.journal_retention_ms,
    )
    if command.trace_context is not None:
        # imported here: nothing of tracing is loaded while it is off
        from restate_server.tracing.span_context import for_callee

        request.trace_context = for_callee(command.trace_context, callee.uuid, not is_call)
    ctx.deliver(callee.partition_key, Invoke(request))


def _resolve_target(
    ctx: ApplyContext, service_name: str, handler_name: str, key: str
) -> tuple[Target, object] | str:
    schema = ctx.schema
    service = schema.get_service(service_name) if schema is not None else None
    if service is None:
        return f"service '{service_name}' not found"
    handler = service.handlers.get(handler_name)
    if handler is None:
        return f"handler '{service_name}/{handler_name}' not found"
    keyed = service.ty != "Service"
    if not keyed and key:
        return f"a key was given for the service '{service_name}', which has no keys"
    info = schema.resolve_invocation_target(service_name, handler_name)  # type: ignore[union-attr]
    target = Target(
        service_name,
        handler_name,
        key if keyed else None,
        _SERVICE_TY[service.ty],
        _HANDLER_KIND.get(handler.ty) if handler.ty else None,
    )
    return target, info


def _callee_id(
    caller_id: bytes, index: int, target: Target, idempotency_key: str | None
) -> ids.InvocationId:
    if idempotency_key is not None:
        return ids.idempotent_invocation_id(
            target.service, target.key, target.handler, idempotency_key
        )
    if target.handler_kind == "workflow" and target.key is not None:
        return ids.workflow_invocation_id(target.service, target.key)
    digest = hashlib.blake2b(caller_id + index.to_bytes(4, "big"), digest_size=24).digest()
    if target.key is not None:
        partition_key = ids.partition_key_for_key(target.service, target.key)
    else:
        partition_key = int.from_bytes(digest[:8], "big")
    return ids.InvocationId(partition_key=partition_key, uuid=digest[8:])
