"""Queries of the ``state`` commands."""

from __future__ import annotations

from restate_cli.sql.literals import quote


def state_of_key_query(service: str, key: str) -> str:
    """All entries of one object/workflow key (JSON: ``key``, hex ``value``)."""
    return (
        f"select key, value from state where service_name = {quote(service)} "
        f"and service_key = {quote(key)} ;"
    )


def state_to_clear_query(service: str, key: str | None) -> str:
    """Entries of a whole service, or of one of its keys (``state clear``)."""
    query = (
        "SELECT service_name, service_key, key, value FROM state "
        f"WHERE service_name = {quote(service)}"
    )
    if key is not None:
        query += f" AND service_key = {quote(key)}"
    return query
