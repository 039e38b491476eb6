"""Callers meeting an invocation that already exists: idempotent repeats, workflow
re-runs, and attach/output requests."""

from __future__ import annotations

from restate_server.partition.actions import IngressReply, IngressSendAck
from restate_server.partition.commands import AttachCaller, AttachInvocation, InvocationRequest
from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.caller import notify_caller
from restate_server.partition.lifecycle.reply import reply_to_sink
from restate_server.storage.records import (
    COMPLETED,
    CallerSink,
    Failure,
    IngressSink,
    InvocationStatus,
    Outcome,
)

WORKFLOW_ALREADY_INVOKED = Outcome(failure=Failure(409, "the workflow method was already invoked"))
NOT_FOUND = Outcome(failure=Failure(404, "invocation not found"))
NOT_READY = Outcome(failure=Failure(470, "the invocation exists but has not completed yet"))


def answer_existing(
    ctx: ApplyContext, invocation_id: bytes, status: InvocationStatus, request: InvocationRequest
) -> None:
    if request.send_ack_request_id is not None:
        ctx.emit(
            IngressSendAck(
                request.send_ack_request_id,
                invocation_id,
                previously_accepted=True,
                execution_time=status.execution_time,
            )
        )
    sink = request.sink
    if sink is None:
        return
    if status.target.handler_kind == "workflow" and request.target.handler_kind == "workflow":
        # A second run of a workflow key is refused, running or done.
        reply_to_sink(ctx, invocation_id, sink, WORKFLOW_ALREADY_INVOKED, None)
        return
    if status.status == COMPLETED and status.output is not None:
        reply_to_sink(ctx, invocation_id, sink, status.output, status.expires_at, status)
        return
    status.sinks.append(sink)
    ctx.put_status(invocation_id, status)


def attach_caller(ctx: ApplyContext, command: AttachCaller) -> None:
    status = ctx.get_status(command.invocation_id)
    if status is None:
        ctx.emit(
            IngressReply(command.request_id, command.invocation_id, NOT_FOUND, from_ingress=True)
        )
        return
    if status.status == COMPLETED and status.output is not None:
        ctx.emit(
            IngressReply(
                command.request_id,
                command.invocation_id,
                status.output,
                status.expires_at,
                target=status.target,
            )
        )
        return
    if not command.wait:
        ctx.emit(
            IngressReply(command.request_id, command.invocation_id, NOT_READY, from_ingress=True)
        )
        return
    status.sinks.append(IngressSink(command.request_id, attach=True))
    ctx.put_status(command.invocation_id, status)


TARGET_NOT_FOUND = Outcome(failure=Failure(404, "not found"))


def attach_invocation(ctx: ApplyContext, command: AttachInvocation) -> None:
    """An invocation's Attach / GetInvocationOutput command reached the target's partition."""
    kind = "attach" if command.wait else "output"
    status = ctx.get_status(command.target_id)
    if status is None:
        notify_caller(ctx, command.caller_id, command.completion_id, kind, TARGET_NOT_FOUND)
        return
    if status.status == COMPLETED and status.output is not None:
        notify_caller(ctx, command.caller_id, command.completion_id, kind, status.output)
        return
    if not command.wait:
        notify_caller(ctx, command.caller_id, command.completion_id, kind, None)
        return
    status.sinks.append(CallerSink(command.caller_id, command.completion_id, "attach"))
    ctx.put_status(command.target_id, status)
