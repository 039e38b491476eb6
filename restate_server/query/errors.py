"""How ``/query`` reports failures: ``{"message": "Datafusion error: ..."}`` with the
status codes restate-server 1.7.12 answers.

The real server answers 400 for SQL syntax errors and planning errors, 500 for the
rest. Two planning errors are 500 there anyway (its DataFusion wraps them with
diagnostics): an unknown table and an unknown column ("Schema error"). The Python
bindings only give us the message, so the kind is read off its prefix.
"""

from __future__ import annotations

import re


class QueryFailed(Exception):
    """A query that produced no result; ``message`` is what the client sees."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_PREFIX = "DataFusion error: "
_SUGGESTION = re.compile(r"\.(?: Did you mean '[^']*'\?)?\nValid fields are ")
_TABLE_NOT_FOUND = re.compile(r"^Error during planning: table '[^']*' not found")


def _status_of(detail: str) -> int:
    if detail.startswith("SQL error:"):
        return 400
    if detail.startswith("Error during planning:"):
        return 500 if _TABLE_NOT_FOUND.match(detail) else 400
    return 500


def from_datafusion(exc: BaseException) -> QueryFailed:
    detail = str(exc)
    while detail.startswith(_PREFIX):
        detail = detail[len(_PREFIX) :]
    # the real server's DataFusion makes no suggestion and keeps the hint on one line
    detail = _SUGGESTION.sub(". Valid fields are ", detail)
    return QueryFailed(_status_of(detail), f"Datafusion error: {detail}")


def too_large(limit: int) -> QueryFailed:
    return QueryFailed(
        500,
        "Datafusion error: Resources exhausted: the query result is larger than the "
        f"configured limit of {limit} bytes (py.query.memory-limit)",
    )
