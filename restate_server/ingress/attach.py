"""Attach to / read the output of an existing invocation (http-apis.md 1.1).

Forms: ``/restate/invocation/{id}/attach|output``, by idempotency key
(``/restate/invocation/{Service}[/{key}]/{handler}/{idempotencyKey}/...``),
``/restate/workflow/{Workflow}/{key}/attach|output``, and the newer
``/restate/attach|output/{id}`` and ``POST /restate/attach|output|lookup``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import unquote

import msgspec

from restate_server.http_server import Request, Response
from restate_server.ingress.errors import (
    BAD_INVOCATION_PATH,
    BAD_WORKFLOW_PATH,
    IngressError,
    cors_headers,
    error_response,
)
from restate_server.ingress.paths import decode_segment
from restate_server.ingress.responses import reply_response
from restate_server.partition.actions import IngressReply
from restate_server.partition.commands import AttachCaller
from restate_server.protocol import ids

if TYPE_CHECKING:
    from restate_server.ingress.server import Ingress

_MODES = ("attach", "output")


async def handle(
    ingress: Ingress, request: Request, head: str, rest: list[str], method: str
) -> Response:
    if head in ("attach", "output", "lookup") and not rest:
        if method != "POST":
            raise IngressError(405, "method not allowed")
        return await _by_body(ingress, request, head)
    if head in ("attach", "output"):
        if method != "GET":
            raise IngressError(405, "method not allowed")
        if len(rest) != 1:
            raise IngressError(404, "not found")
        invocation_id = _parse_id(rest[0])
        return await _attach(ingress, request, invocation_id, head == "attach", None)
    if head == "invocation":
        return await _invocation_path(ingress, request, rest, method)
    if head == "workflow":
        return await _workflow_path(ingress, request, rest, method)
    raise IngressError(404, "not found")


async def _invocation_path(
    ingress: Ingress, request: Request, rest: list[str], method: str
) -> Response:
    if len(rest) < 2:
        raise IngressError(400, BAD_INVOCATION_PATH)
    mode = rest[-1]
    if mode not in _MODES:
        raise IngressError(404, "not found")
    if method != "GET":
        raise IngressError(405, "method not allowed")
    if len(rest) == 2:
        invocation_id = _parse_id(rest[0])
        return await _attach(ingress, request, invocation_id, mode == "attach", None)
    # by idempotency key: {Service}/{handler}/{key} or {Object}/{key}/{handler}/{ikey}
    service_name = unquote(rest[0])
    service = ingress.registry.get_service(service_name)
    if service is None:
        raise IngressError(404, "invocation not found")
    keyed = service.ty != "Service"
    parts = rest[1:-1]
    if (keyed and len(parts) != 3) or (not keyed and len(parts) != 2):
        raise IngressError(400, BAD_INVOCATION_PATH)
    if keyed:
        key: str | None = decode_segment(parts[0])
        handler, idempotency_key = unquote(parts[1]), unquote(parts[2])
    else:
        key = None
        handler, idempotency_key = unquote(parts[0]), unquote(parts[1])
    invocation_id = ids.idempotent_invocation_id(service_name, key, handler, idempotency_key)
    return await _attach(ingress, request, invocation_id, mode == "attach", None)


async def _workflow_path(
    ingress: Ingress, request: Request, rest: list[str], method: str
) -> Response:
    if len(rest) != 3:
        raise IngressError(400, BAD_WORKFLOW_PATH)
    mode = rest[2]
    if mode not in _MODES:
        raise IngressError(404, "not found")
    if method != "GET":
        raise IngressError(405, "method not allowed")
    name = unquote(rest[0])
    service = ingress.registry.get_service(name)
    if service is None or service.ty != "Workflow":
        raise IngressError(404, "invocation not found")
    key = decode_segment(rest[1])
    invocation_id = ids.workflow_invocation_id(name, key)
    return await _attach(ingress, request, invocation_id, mode == "attach", name)


class _Target(msgspec.Struct, rename="camel"):
    target: str
    invocation_id: str | None = None
    workflow_name: str | None = None
    workflow_key: str | None = None
    service: str | None = None
    key: str | None = None
    handler: str | None = None
    idempotency_key: str | None = None
    scope: str | None = None


async def _by_body(ingress: Ingress, request: Request, head: str) -> Response:
    raw = request.body
    try:
        target = msgspec.json.decode(raw, type=_Target)
    except msgspec.DecodeError as exc:
        raise IngressError(500, f"cannot read body: invalid request body: {exc}") from exc
    if target.scope is not None:
        raise IngressError(400, "scoped invocations require vqueues to be enabled")
    workflow_name = None
    if target.target == "invocation" and target.invocation_id:
        invocation_id = _parse_id(target.invocation_id)
    elif target.target == "workflow" and target.workflow_name and target.workflow_key is not None:
        invocation_id = ids.workflow_invocation_id(target.workflow_name, target.workflow_key)
        workflow_name = target.workflow_name
    elif (
        target.target == "idempotentInvocation"
        and target.service
        and target.handler
        and target.idempotency_key is not None
    ):
        invocation_id = ids.idempotent_invocation_id(
            target.service, target.key, target.handler, target.idempotency_key
        )
    else:
        raise IngressError(
            500, f"cannot read body: invalid request body: unknown variant `{target.target}`"
        )
    if head == "lookup":
        body = json.dumps({"invocationId": str(invocation_id)}, separators=(",", ":")).encode()
        headers = cors_headers(request, {"content-type": "application/json"})
        return Response(status=200, body=body, headers=headers)
    return await _attach(ingress, request, invocation_id, head == "attach", workflow_name)


def _parse_id(text: str) -> ids.InvocationId:
    try:
        return ids.InvocationId.from_str(text)
    except ValueError as exc:
        raise IngressError(400, f"bad invocation id '{text}': {exc}") from exc


async def _attach(
    ingress: Ingress,
    request: Request,
    invocation_id: ids.InvocationId,
    wait: bool,
    workflow_name: str | None,
) -> Response:
    raw_id = invocation_id.to_bytes()
    request_id, future = ingress.waiters.register()
    ingress.partitions.for_invocation(raw_id).submit(AttachCaller(raw_id, request_id, wait))
    try:
        answer = await future
    except BaseException:
        ingress.waiters.forget(request_id)
        raise
    assert isinstance(answer, IngressReply)
    outcome = answer.outcome
    never_ran = answer.from_ingress and outcome.failure is not None and outcome.failure.code == 404
    if never_ran and wait and workflow_name is not None:
        # Attaching to a workflow key that never ran answers with the computed id.
        return error_response(
            request, 404, "not found", "invocation", invocation_id=str(invocation_id)
        )
    content_type, set_if_empty = _output_content_type(ingress, answer)
    return reply_response(request, answer, content_type, set_if_empty)


def _output_content_type(ingress: Ingress, answer: IngressReply) -> tuple[str | None, bool]:
    """Results are served with the output content type the handler declares."""
    target = answer.target
    if target is None:
        return "application/json", False
    info = ingress.registry.resolve_invocation_target(target.service, target.handler)
    if info is None:
        return "application/json", False
    return info.output_content_type, info.output_set_content_type_if_empty
