"""What a planned statement reads: its table scans, read off DataFusion's optimized plan.

The statement is planned against schema-only stand-ins of our tables. The optimizer
has by then pushed projections, predicates and limits down to the ``TableScan``
nodes; predicates it could not push sit in ``Filter`` nodes right above them. Both
say which rows a scan can possibly need: they become the scan's hints.
"""

from __future__ import annotations

from typing import Any

import msgspec

from restate_server.query.hints import (
    ScanHints,
    hints_from_predicates,
    merge_scans,
    referenced_columns,
)

# nodes that pass rows through unchanged, so a Filter above them still filters the scan
_TRANSPARENT = frozenset({"SubqueryAlias"})


class TableReads(msgspec.Struct):
    """Everything a query reads from one table, over all of its scans."""

    hints: ScanHints
    # columns the pushed-down predicates read (the scan must produce them to apply the
    # predicates, even when they are not projected); None: unknown, produce all
    filter_columns: frozenset[str] | None
    # how many times the plan scans the table (each scan reads its ranges again)
    scans: int = 1


def plan_reads(plan: Any, tables: frozenset[str]) -> dict[str, TableReads]:
    """Per table of ours that ``plan`` (an optimized LogicalPlan) scans."""
    scans: dict[str, list[tuple[ScanHints, frozenset[str] | None]]] = {}
    _walk(plan, [], tables, scans)
    reads = {}
    for table, found in scans.items():
        columns: frozenset[str] | None = frozenset()
        for _, used in found:
            columns = None if columns is None or used is None else columns | used
        hints = merge_scans([hints for hints, _ in found])
        reads[table] = TableReads(hints, columns, len(found))
    return reads


def table_of(name: str, tables: frozenset[str]) -> str | None:
    """Our table behind a scanned name (``state``, ``public.state``, ``restate.public.state``)."""
    parts = name.split(".")
    if parts[-1] not in tables:
        return None
    if len(parts) >= 2 and parts[-2] != "public":
        return None
    if len(parts) == 3 and parts[0] != "restate":
        return None
    return parts[-1]


def _walk(
    plan: Any,
    above: list[Any],
    tables: frozenset[str],
    scans: dict[str, list[tuple[ScanHints, frozenset[str] | None]]],
) -> None:
    variant = plan.to_variant()
    kind = type(variant).__name__
    if kind == "TableScan":
        table = table_of(variant.table_name(), tables)
        if table is not None:
            pushed = list(variant.filters())
            hints = hints_from_predicates([*pushed, *above], variant.fetch())
            used: frozenset[str] | None = frozenset()
            for predicate in pushed:
                columns = referenced_columns(predicate)
                used = None if columns is None or used is None else used | columns
            scans.setdefault(table, []).append((hints, used))
        return
    if kind == "Filter":
        _walk(variant.input()[0], [*above, variant.predicate()], tables, scans)
        return
    inputs = plan.inputs()
    passed = above if kind in _TRANSPARENT else []
    for child in inputs:
        _walk(child, passed, tables, scans)
