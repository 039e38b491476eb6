"""Scan hints: what a table scan may skip, read off the predicates DataFusion planned.

A hint only ever narrows a scan to a superset of the rows the query can use:
DataFusion (or the pyarrow filter it pushed into the scan) still applies every
predicate exactly. So a predicate we do not understand simply gives no hint.

Understood, per column: ``col = literal``, ``col IN (...)``, ORs of equalities on one
column (what DataFusion turns short IN lists into), and the negative forms
``col != literal`` / ``col NOT IN (...)``; conjunctions combine them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

# the columns whose values a scan can use to skip data (the rest give no hint)
HINT_COLUMNS = frozenset(
    {
        "id",
        "partition_key",
        "service_name",
        "service_key",
        "target_service_name",
        "target_service_key",
        "status",
    }
)


class ScanHints(msgspec.Struct, frozen=True):
    """Per column, the values a row may have (``allowed``) or may not have (``excluded``).

    A column missing from ``allowed`` may hold anything. ``limit``: the scan may stop
    after this many rows (rows that pass every pushed predicate).
    """

    allowed: dict[str, frozenset[Any]] = msgspec.field(default_factory=dict)
    excluded: dict[str, frozenset[Any]] = msgspec.field(default_factory=dict)
    limit: int | None = None

    def values(self, column: str) -> frozenset[Any] | None:
        return self.allowed.get(column)

    def without_limit(self) -> ScanHints:
        return ScanHints(self.allowed, self.excluded, None)


NO_HINTS = ScanHints()


def hints_from_predicates(predicates: Iterable[Any], limit: int | None = None) -> ScanHints:
    """Hints from DataFusion filter expressions that every scanned row must satisfy."""
    allowed: dict[str, frozenset[Any]] = {}
    excluded: dict[str, frozenset[Any]] = {}
    for predicate in predicates:
        for conjunct in _conjuncts(predicate):
            positive = _allowed_values(conjunct)
            if positive is not None:
                column, values = positive
                if column in HINT_COLUMNS:
                    current = allowed.get(column)
                    allowed[column] = values if current is None else current & values
                continue
            negative = _excluded_values(conjunct)
            if negative is not None:
                column, values = negative
                if column in HINT_COLUMNS:
                    excluded[column] = excluded.get(column, frozenset()) | values
    return ScanHints(allowed, excluded, limit)


def merge_scans(scans: list[ScanHints]) -> ScanHints:
    """One table scanned several times in a plan: hints that hold for every scan."""
    if not scans:
        return NO_HINTS
    if len(scans) == 1:
        return scans[0]
    allowed: dict[str, frozenset[Any]] = {}
    for column in scans[0].allowed:
        sets = [scan.allowed.get(column) for scan in scans]
        if all(values is not None for values in sets):
            allowed[column] = frozenset().union(*sets)  # type: ignore[arg-type]
    excluded: dict[str, frozenset[Any]] = {}
    for column in scans[0].excluded:
        sets = [scan.excluded.get(column) for scan in scans]
        if all(values is not None for values in sets):
            excluded[column] = frozenset.intersection(*sets)  # type: ignore[arg-type]
    limits = [scan.limit for scan in scans]
    limit = None if any(value is None for value in limits) else max(limits)  # type: ignore[type-var]
    return ScanHints(allowed, excluded, limit)


# ---- reading DataFusion expressions


def _variant(expr: Any) -> tuple[str, Any]:
    try:
        variant = expr.to_variant()
    except Exception:  # an expression kind the bindings cannot show: no hint
        return "", None
    return type(variant).__name__, variant


def _conjuncts(expr: Any) -> list[Any]:
    kind, variant = _variant(expr)
    if kind == "BinaryExpr" and variant.op() == "AND":
        return _conjuncts(variant.left()) + _conjuncts(variant.right())
    return [expr]


def _column_name(expr: Any) -> str | None:
    kind, variant = _variant(expr)
    return variant.name() if kind == "Column" else None


def _literal(expr: Any) -> tuple[bool, Any]:
    kind, _ = _variant(expr)
    if kind != "Literal":
        return False, None
    try:
        return True, expr.python_value().as_py()
    except Exception:  # a literal type without a Python value
        return False, None


def _column_and_literal(variant: Any) -> tuple[str, Any] | None:
    left, right = variant.left(), variant.right()
    column = _column_name(left)
    is_literal, value = _literal(right)
    if column is None or not is_literal:
        column = _column_name(right)
        is_literal, value = _literal(left)
    if column is None or not is_literal:
        return None
    return column, value


def _in_list(variant: Any) -> tuple[str, frozenset[Any]] | None:
    column = _column_name(variant.expr())
    if column is None:
        return None
    values = []
    for item in variant.list():
        is_literal, value = _literal(item)
        if not is_literal:
            return None
        values.append(value)
    return column, frozenset(values)


def _allowed_values(expr: Any) -> tuple[str, frozenset[Any]] | None:
    kind, variant = _variant(expr)
    if kind == "BinaryExpr":
        op = variant.op()
        if op == "=":
            pair = _column_and_literal(variant)
            return None if pair is None else (pair[0], frozenset([pair[1]]))
        if op == "OR":
            left = _allowed_values(variant.left())
            right = _allowed_values(variant.right())
            if left is not None and right is not None and left[0] == right[0]:
                return left[0], left[1] | right[1]
        return None
    if kind == "InList" and not variant.negated():
        return _in_list(variant)
    return None


def _excluded_values(expr: Any) -> tuple[str, frozenset[Any]] | None:
    kind, variant = _variant(expr)
    if kind == "BinaryExpr" and variant.op() == "!=":
        pair = _column_and_literal(variant)
        return None if pair is None else (pair[0], frozenset([pair[1]]))
    if kind == "InList" and variant.negated():
        return _in_list(variant)
    return None


def referenced_columns(expr: Any) -> set[str] | None:
    """Every column an expression reads; None when that cannot be told."""
    found: set[str] = set()
    pending = [expr]
    while pending:
        current = pending.pop()
        try:
            rex = str(current.rex_type())
        except Exception:
            return None
        if rex.endswith("Reference"):
            name = _column_name(current)
            if name is None:
                return None
            found.add(name)
        elif rex.endswith("Literal"):
            continue
        else:
            try:
                pending.extend(current.rex_call_operands())
            except Exception:  # subqueries, placeholders...: cannot tell
                return None
    return found
