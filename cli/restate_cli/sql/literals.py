"""SQL string literals and ``IN`` lists."""

from __future__ import annotations

from collections.abc import Iterable


def quote(value: str) -> str:
    """A single-quoted SQL string literal (quotes inside are doubled)."""
    return "'" + value.replace("'", "''") + "'"


def in_list(values: Iterable[str], sep: str = ",") -> str:
    """``('a','b')``; the real CLI writes its filter lists without spaces."""
    return "(" + sep.join(quote(v) for v in values) + ")"
