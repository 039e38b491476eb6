"""Command groups with aliases (``dp`` for ``deployments``, ``ls`` for ``list``, …)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click


class AliasedGroup(click.Group):
    """A group whose commands can have other names; help lists them once, with aliases."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.aliases: dict[str, str] = {}

    def add_aliased(self, command: click.Command, aliases: Sequence[str] = ()) -> None:
        self.add_command(command)
        assert command.name is not None
        for alias in aliases:
            self.aliases[alias] = command.name
        if aliases:
            label = "alias" if len(aliases) == 1 else "aliases"
            suffix = f" [{label}: {', '.join(aliases)}]"
            command.short_help = (command.get_short_help_str(limit=60)) + suffix

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, self.aliases.get(cmd_name, cmd_name))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # report the canonical name (usage lines, ctx.info_name)
        name, command, rest = super().resolve_command(ctx, args)
        return (command.name if command is not None else name), command, rest
