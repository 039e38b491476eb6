"""Reading request bodies, path and query parameters with the real server's rejections."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

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


def query_error(detail: str) -> ExtractionError:
    return ExtractionError(400, f"Failed to deserialize query string: {detail}")


def query_fields(request: Request, *names: str) -> dict[str, str]:
    """The query parameters ``names`` as the framework extracts them into a struct: a
    repeated one is refused (``duplicate field``), unknown ones are ignored."""
    raw_query = request.raw_path.partition("?")[2]
    fields: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        if name in names:
            if name in fields:
                raise query_error(f"duplicate field `{name}`")
            fields[name] = value
    return fields


def parse_query_bool(name: str, value: str | None) -> bool | None:
    if value is None:
        return None
    if value in ("true", "false"):
        return value == "true"
    raise query_error(f"{name}: provided string was not `true` or `false`")


def query_bool(request: Request, name: str) -> bool | None:
    return parse_query_bool(name, query_fields(request, name).get(name))


# the characters ``http::Uri`` accepts (the real server parses URIs with it)
_URI_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")
# ... and in an authority (``%`` is looked at separately)
_AUTHORITY_CHARS = frozenset(
    "!#$&'()*+,-./0123456789:;=?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]_abcdefghijklmnopqrstuvwxyz~"
)


def uri_problem(value: str) -> str | None:
    """Why ``http::Uri`` refuses ``value`` (its error text), or None."""
    if not value:
        return "empty string"
    if not _URI_CHARS.match(value):
        return "invalid uri character"
    return None


def authority_problem(value: str) -> str | None:
    """Why ``http::uri::Authority`` refuses ``value`` (its error text), or None: Kafka
    cluster names are parsed as one."""
    if not value:
        return "empty string"
    colons = 0
    open_bracket = close_bracket = has_percent = False
    at_sign = -1
    end = len(value)
    for index, char in enumerate(value):
        if char == "%":
            has_percent = True
            continue
        if char not in _AUTHORITY_CHARS:
            return "invalid uri character"
        if char in "/?#":
            end = index
            break
        if char == ":":
            colons += 1
            if colons > 8:
                return "invalid authority"
        elif char == "[":
            if has_percent or open_bracket:
                return "invalid authority"
            open_bracket = True
        elif char == "]":
            if not open_bracket or close_bracket:
                return "invalid authority"
            close_bracket = True
            colons, has_percent = 0, False  # they belonged to an IPv6 address
        elif char == "@":
            at_sign = index
            colons, has_percent = 0, False  # they belonged to the user info
    if open_bracket != close_bracket or colons > 1 or has_percent:
        return "invalid authority"
    if end > 0 and at_sign == end - 1:
        return "invalid authority"
    if end != len(value):
        return "invalid uri character"
    return None


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


# the longest duration the real server's admin API takes (jiff's span limit, 19,998
# years): 175,307,616 hours
MAX_DURATION_MS = 175_307_616 * 3_600_000


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
    if value == "0":
        return 0  # the one bare number the real server's (jiff's) friendly format takes
    if value.strip().isdigit():
        # a bare number has no unit; the real server rejects it too
        error = "expected a unit designator after the number"
    else:
        try:
            milliseconds = parse_duration(value)
        except DurationError as exc:
            error = str(exc)
        else:
            if milliseconds <= MAX_DURATION_MS:
                return milliseconds
            # the real server drops the connection (a panic) just past its limit
            error = f"the duration is too large (at most {MAX_DURATION_MS // 3_600_000}h)"
    raise shape_error(f'{field}: failed to parse input in the "friendly" duration format: {error}')
