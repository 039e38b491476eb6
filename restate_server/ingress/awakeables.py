"""Completing awakeables through the ingress: ``/restate/awakeables/{id}/resolve|reject``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from restate_server.http_server import Request, Response
from restate_server.ingress.errors import BAD_AWAKEABLE_PATH, IngressError, cors_headers
from restate_server.partition.commands import ResolveAwakeable
from restate_server.protocol.ids import parse_awakeable_id
from restate_server.storage.records import Failure

if TYPE_CHECKING:
    from restate_server.ingress.server import Ingress


async def handle(ingress: Ingress, request: Request, rest: list[str], method: str) -> Response:
    if len(rest) != 2:
        raise IngressError(400, BAD_AWAKEABLE_PATH)
    raw_id, operation = rest
    if operation not in ("resolve", "reject"):
        raise IngressError(404, "not found")
    if method != "POST":
        raise IngressError(405, "method not allowed")
    try:
        invocation_id, kind, index = parse_awakeable_id(raw_id)
    except ValueError as exc:
        raise IngressError(400, f"bad awakeable id '{raw_id}': {exc}") from exc
    body = request.body
    if kind == "sign":
        if operation == "resolve":
            command = ResolveAwakeable(invocation_id.to_bytes(), index, value=body)
        else:
            message = body.decode("utf-8", errors="replace")
            command = ResolveAwakeable(
                invocation_id.to_bytes(), index, failure=Failure(500, message)
            )
        request_id, future = ingress.waiters.register()
        command.request_id = request_id
        ingress.partitions.for_invocation(command.invocation_id).submit(command)
        try:
            await future
        except BaseException:
            ingress.waiters.forget(request_id)
            raise
    # Legacy "prom_" awakeables belong to pre-V5 journals, which this server never runs.
    return Response(status=202, headers=cors_headers(request, {}))
