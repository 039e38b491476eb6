"""Turning partition answers into HTTP responses."""

from __future__ import annotations

from restate_server.http_server import Request, Response
from restate_server.ingress.errors import cors_headers, error_response
from restate_server.ingress.timefmt import rfc3339_millis_offset, rfc3339_nanos
from restate_server.partition.actions import IngressReply, IngressSendAck
from restate_server.protocol.ids import invocation_id_str


def id_str(raw: bytes) -> str:
    return invocation_id_str(raw)


def reply_response(
    request: Request,
    reply: IngressReply,
    output_content_type: str | None,
    set_content_type_if_empty: bool = False,
) -> Response:
    invocation_id = id_str(reply.invocation_id)
    outcome = reply.outcome
    expires = None if reply.expires_at is None else rfc3339_millis_offset(reply.expires_at)
    if outcome.failure is not None:
        failure = outcome.failure
        if reply.from_ingress:
            return error_response(request, failure.code, failure.message, "ingress")
        return error_response(
            request,
            failure.code,
            failure.message,
            "invocation",
            invocation_id=invocation_id,
            expires=expires,
            metadata=failure.metadata,
        )
    body = outcome.value or b""
    headers = {"x-restate-id": invocation_id}
    if expires is not None:
        headers["idempotency-expires"] = expires
    if output_content_type and (body or set_content_type_if_empty):
        headers["content-type"] = output_content_type
    return Response(status=200, body=body, headers=cors_headers(request, headers))


def send_ack_response(request: Request, ack: IngressSendAck) -> Response:
    invocation_id = id_str(ack.invocation_id)
    status = "PreviouslyAccepted" if ack.previously_accepted else "Accepted"
    # ids and the status word need no JSON escaping
    if ack.execution_time is not None:
        when = rfc3339_nanos(ack.execution_time)
        body = f'{{"invocationId":"{invocation_id}","executionTime":"{when}","status":"{status}"}}'
    else:
        body = f'{{"invocationId":"{invocation_id}","status":"{status}"}}'
    headers = {"content-type": "application/json", "x-restate-id": invocation_id}
    return Response(status=202, body=body.encode(), headers=cors_headers(request, headers))
