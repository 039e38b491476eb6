"""What a command works with: the settings, the admin client and the output."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import click

from restate_cli.client import AdminClient
from restate_cli.errors import CliError
from restate_cli.render import Output
from restate_cli.settings import Settings, settings


@dataclass
class Session:
    settings: Settings
    out: Output
    _client: AdminClient | None = field(default=None, repr=False)

    @property
    def client(self) -> AdminClient:
        if self._client is None:
            self._client = AdminClient(
                self.settings.admin_url,
                auth_token=self.settings.auth_token,
                connect_timeout=self.settings.connect_timeout_ms / 1000,
                request_timeout=self.settings.request_timeout_ms / 1000,
                insecure=self.settings.insecure,
            )
        return self._client

    def confirm(self, question: str) -> None:
        """Ask; ``--yes`` (or CI) answers for the user. Declining ends the command."""
        if self.settings.yes:
            self.out.line(f"{question} Auto-confirming --yes is set.")
            return
        try:
            accepted = click.confirm(question, default=False)
        except click.Abort:
            accepted = False
        if not accepted:
            raise CliError("User aborted (pass --yes to confirm without a prompt)")


def session(*, json_mode: bool = False) -> Session:
    """The session of the running command; ``json_mode`` keeps stdout for JSON only."""
    ctx = click.get_current_context()
    key = "restate_cli.session"
    found = ctx.meta.get(key)
    if found is None:
        current = settings(ctx)
        found = Session(current, Output(current.table_style))
        ctx.meta[key] = found
    if json_mode:
        found.out.json_mode(True)
    return found


def run_watched(render: Callable[[], None], *, watch: bool, interval: float) -> None:
    """Run ``render`` once, or (``-w``) again every ``interval`` seconds until Ctrl-C."""
    if not watch:
        render()
        return
    out = session().out
    try:
        while True:
            out.console.clear()
            render()
            time.sleep(max(interval, 0.1))
    except KeyboardInterrupt:
        return
