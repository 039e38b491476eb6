"""Reading a ``POST /query`` request: the SQL text and the answer format.

Rejections are the real server's framework errors (text/plain): 415 without a JSON
content type, 400 for a body that is not JSON, 422 for JSON without a string
``query``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from restate_server.admin.extract import describe_value, read_json, shape_error
from restate_server.http_server import Request

JSON = "application/json"


class QueryRequest(msgspec.Struct, frozen=True):
    sql: str
    # True: JSON rows; False: an Arrow IPC stream
    json: bool


def _position(body: bytes, offset: int) -> str:
    """serde's ``at line L column C`` for the byte at ``offset``."""
    before = body[:offset]
    line = before.count(b"\n") + 1
    column = offset - (before.rfind(b"\n") + 1)
    return f"at line {line} column {column}"


def _end_of_object(body: bytes) -> int:
    end = body.rstrip()
    return len(end)


async def read_query_request(request: Request) -> QueryRequest:
    payload: Any = await read_json(request)
    body = request.body
    if not isinstance(payload, dict):
        raise shape_error(
            f"invalid type: {describe_value(payload)}, expected struct QueryRequest "
            f"{_position(body, _end_of_object(body))}"
        )
    if "query" not in payload:
        raise shape_error(f"missing field `query` {_position(body, _end_of_object(body))}")
    sql = payload["query"]
    if not isinstance(sql, str):
        raise shape_error(
            f"query: invalid type: {describe_value(sql)}, expected a string "
            f"{_position(body, _value_end(body))}"
        )
    # the real server compares the header to "application/json" exactly
    return QueryRequest(sql, request.headers.get("accept") == JSON)


def _value_end(body: bytes) -> int:
    """Where the value of ``query`` ends (serde reports the position after it)."""
    start = body.find(b'"query"')
    if start < 0:
        return _end_of_object(body)
    colon = body.find(b":", start + 7)
    position = colon + 1
    while position < len(body) and body[position : position + 1] in b" \t\r\n":
        position += 1
    depth = 0
    while position < len(body):
        char = body[position : position + 1]
        if char in b"[{":
            depth += 1
        elif char in b"]}":
            if depth == 0:
                break
            depth -= 1
        elif char == b"," and depth == 0:
            break
        position += 1
    return len(body[:position].rstrip())
