"""The filters of ``invocations list`` and ``invocations watch``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from restate_cli.sql import invocations as sql

F = TypeVar("F", bound=Callable[..., Any])


def filter_options(f: F) -> F:
    """The filters shared by ``list`` and ``watch``."""
    decorators = [
        click.option(
            "--service", "services", multiple=True, help="Service to list invocations for."
        ),
        click.option("--handler", "handlers", multiple=True, help="Filter by handler name."),
        click.option("--key", "keys", multiple=True, help="Filter by service key."),
        click.option(
            "--deployment", "--dp", "deployments", multiple=True, help="Filter by deployment ID."
        ),
        click.option(
            "--status",
            "statuses",
            multiple=True,
            type=click.Choice(list(sql.LIST_STATUSES)),
            help="Filter by status(es).",
        ),
        click.option(
            "--virtual-objects-only", is_flag=True, help="Only invocations on keyed services."
        ),
        click.option(
            "--zombie",
            is_flag=True,
            help="Invocations pinned to deployments that were removed.",
        ),
        click.option(
            "--limit", type=int, default=100, show_default=True, help="Limit the results."
        ),
        click.option("--oldest-first", is_flag=True, help="Older invocations first."),
    ]
    for decorator in reversed(decorators):
        f = decorator(f)
    return f


def build_filter(
    *,
    services: tuple[str, ...],
    handlers: tuple[str, ...],
    keys: tuple[str, ...],
    deployments: tuple[str, ...],
    statuses: tuple[str, ...],
    virtual_objects_only: bool,
    zombie: bool,
    include_all: bool = False,
    completion_result: str | None = None,
) -> sql.InvocationFilter:
    if completion_result is not None and statuses:
        raise click.UsageError("--completion-result cannot be used with --status")
    if completion_result is not None and include_all:
        raise click.UsageError("--all cannot be used with --completion-result")
    return sql.InvocationFilter(
        services=services,
        handlers=handlers,
        keys=keys,
        deployments=deployments,
        statuses=statuses,
        completion_result=completion_result,
        virtual_objects_only=virtual_objects_only,
        zombie=zombie,
        include_all=include_all,
    )
