"""The three error shapes of the real admin API.

1. application errors: JSON ``{"message": ..., "restate_code": ... | null}``;
2. request-extraction errors of the HTTP framework: ``text/plain; charset=utf-8``
   (415 wrong content type, 400 bad JSON / bad path parameter, 422 wrong JSON shape);
3. bare statuses with an empty body (unknown route 404, wrong method 405 + ``allow``,
   501 for a non-forced deployment delete).

Handlers raise these; the router turns them into responses.
"""

from __future__ import annotations

from typing import Any

import msgspec

from restate_server.http_server import Response
from restate_server.schema.errors import DiscoveryError, SchemaError

_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"


class ApiError(Exception):
    """Answered as ``{"message", "restate_code"}`` JSON."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def response(self) -> Response:
        return json_response({"message": self.message, "restate_code": self.code}, self.status)


class ExtractionError(Exception):
    """Answered as ``text/plain`` (what the real server's framework says for bad requests)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text

    def response(self) -> Response:
        return Response(
            status=self.status, body=self.text.encode(), headers={"content-type": _TEXT}
        )


class EmptyError(Exception):
    """Answered with a bare status and no body."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers or {}

    def response(self) -> Response:
        return empty_response(self.status, self.headers)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    all_headers = {"content-type": _JSON}
    all_headers.update(headers or {})
    return Response(status=status, body=msgspec.json.encode(body), headers=all_headers)


def empty_response(status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(status=status, headers=headers)


def schema_error(error: SchemaError | DiscoveryError) -> ApiError:
    """Registry/discovery errors, decorated with their code the way the real server does.

    Discovery errors pass through a boxed error that prints the code once more, hence
    ``[META0003] [META0003] ...`` for those (verified against restate-server 1.7.12).
    """
    message = error.message
    if error.code is not None:
        message = f"[{error.code}] {message}"
        if isinstance(error, DiscoveryError):
            message = f"[{error.code}] {message}"
    return ApiError(error.status, message, error.code)


def not_found(what: str, name: str) -> ApiError:
    return ApiError(404, f"The requested {what} '{name}' does not exist")


def invalid_field(field: str, reason: str) -> ApiError:
    return ApiError(400, f"The request field '{field}' is invalid. Reason: {reason}")
