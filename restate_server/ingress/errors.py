"""Ingress error answers: JSON bodies and headers exactly as the real server writes them."""

from __future__ import annotations

import json

from restate_server.http_server import Request, Response

CORS_VARY = "origin, access-control-request-method, access-control-request-headers"

BAD_SERVICE_PATH = (
    "bad path, expected either /:service-name/:handler or /:object-name/:object-key/:handler"
)
BAD_INVOCATION_PATH = (
    "bad path, expected either /restate/invocation/:invocation_id/output or "
    "/restate/invocation/:invocation_id/attach or "
    "/restate/invocation/:invocation_target/:idempotency_key/output or "
    "/restate/invocation/:invocation_target/:idempotency_key/attach"
)
BAD_WORKFLOW_PATH = (
    "bad path, expected either /restate/workflow/:workflow_name/:workflow_key/output or "
    "/restate/workflow/:workflow_name/:workflow_key/attach"
)
BAD_AWAKEABLE_PATH = (
    "bad path, expected either /restate/awakeables/:id/resolve or /restate/awakeables/:id/reject"
)


class IngressError(Exception):
    """An answer produced by the ingress itself (``x-restate-error-source: ingress``)."""

    def __init__(self, status: int, message: str, invocation_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.invocation_id = invocation_id


def cors_headers(request: Request, headers: dict[str, str]) -> dict[str, str]:
    headers["vary"] = CORS_VARY
    origin = request.headers.get("origin")
    if origin is not None:
        headers["access-control-allow-origin"] = origin
    headers["access-control-allow-credentials"] = "true"
    return headers


def error_response(
    request: Request,
    status: int,
    message: str,
    source: str,
    *,
    invocation_id: str | None = None,
    expires: str | None = None,
    metadata: tuple[tuple[str, str], ...] | None = None,
) -> Response:
    headers: dict[str, str] = {}
    if invocation_id is not None:
        headers["x-restate-id"] = invocation_id
    if expires is not None:
        headers["idempotency-expires"] = expires
    headers["x-restate-error-source"] = source
    headers["content-type"] = "application/json"
    fields: dict[str, object] = {"code": status, "message": message}
    if metadata:
        # a failed outcome's metadata, already sorted by key like the real server's map
        fields["metadata"] = dict(metadata)
    fields["source"] = source
    body = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status=_http_status(status), body=body, headers=cors_headers(request, headers))


def _http_status(code: int) -> int:
    """Failure codes are HTTP-like; anything outside the valid range answers 500."""
    return code if 100 <= code <= 599 else 500
