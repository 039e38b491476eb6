"""Structured fields of a log line, passed as ``extra={FIELDS: {...}}``.

Lines about an invocation carry its id, target and attempt under the real server's
field names, so one ``grep inv_…`` finds its whole story. The target is
``service/handler``: keys, like request bodies and state values, are user data and
never go into logs.
"""

from __future__ import annotations

from typing import Any

FIELDS = "restate_fields"

INVOCATION_ID = "restate.invocation.id"
INVOCATION_TARGET = "restate.invocation.target"
INVOCATION_ATTEMPT = "restate.invocation.attempt"


def invocation_fields(
    invocation_id: str, service: str, handler: str, attempt: int | None = None, **more: Any
) -> dict[str, dict[str, Any]]:
    """``extra`` for a line about one invocation (``attempt`` counts from 1)."""
    fields: dict[str, Any] = {
        INVOCATION_ID: invocation_id,
        INVOCATION_TARGET: f"{service}/{handler}",
    }
    if attempt is not None:
        fields[INVOCATION_ATTEMPT] = attempt
    fields.update(more)
    return {FIELDS: fields}
