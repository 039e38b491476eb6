"""Reading request bodies, path and query parameters with the real server's rejections."""

from __future__ import annotations

from typing import Any

import msgspec

from restate_server.admin.errors import ExtractionError
from restate_server.durations import DurationError, parse_duration
from restate_server.http_server import Request


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    essence = content_type.split(";", 1)[0].strip().lower()
    main, _, sub = essence.partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


async def read_json(request: Request) -> Any:
    """The decoded JSON body: 415 without a JSON content type, 400 when it is not JSON."""
    if not _is_json(request.headers.get("content-type")):
        raise ExtractionError(415, "Expected request with `Content-Type: application/json`")
    body = request.body
    if not body.strip():
        raise ExtractionError(
            400,
            "Failed to parse the request body as JSON: EOF while parsing a value at line 1 "
            "column 0",
        )
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise ExtractionError(400, f"Failed to parse the request body as JSON: {exc}") from None


def shape_error(detail: str) -> ExtractionError:
    return ExtractionError(
        422, f"Failed to deserialize the JSON body into the target type: {detail}"
    )


def path_error(name: str, value: str, reason: str) -> ExtractionError:
    return ExtractionError(
        400, f"Invalid URL: Cannot parse `{name}` with value `{value}`: {reason}"
    )


def query_bool(request: Request, name: str) -> bool | None:
    value = request.query.get(name)
    if value is None:
        return None
    if value in ("true", "false"):
        return value == "true"
    raise ExtractionError(
        400,
        f"Failed to deserialize query string: {name}: provided string was not `true` or `false`",
    )


def describe_value(value: Any) -> str:
    """How serde names an unexpected JSON value (``string "x"``, ``integer `5```)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f'string "{value}"'
    if isinstance(value, list):
        return "sequence"
    return "map"


def optional_bool(obj: dict[str, Any], field: str) -> bool | None:
    value = obj.get(field)
    if value is None or isinstance(value, bool):
        return value
    raise shape_error(f"{field}: invalid type: {describe_value(value)}, expected a boolean")


def optional_duration_ms(obj: dict[str, Any], field: str) -> int | None:
    """A friendly (``1h 30m``) or ISO 8601 (``PT1H``) duration string, in milliseconds."""
    value = obj.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise shape_error(
            f"{field}: invalid type: {describe_value(value)}, "
            "expected a human-friendly duration string"
        )
    error = None
    if value.strip().isdigit():
        # a bare number has no unit; the real server rejects it too
        error = "expected a unit designator after the number"
    else:
        try:
            return parse_duration(value)
        except DurationError as exc:
            error = str(exc)
    raise shape_error(f'{field}: failed to parse input in the "friendly" duration format: {error}')
