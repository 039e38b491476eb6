"""Global options and environment: where the servers are and how to talk and print.

The real CLI accepts its global flags (``-y``, ``--table-style``, …) anywhere on the
command line (``restate dp register URL --yes``); click only knows options per command, so
every group and command gets them (``common_options``) and they all write into one
``Settings`` shared through ``ctx.meta``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from restate_cli.timefmt import TIME_FORMATS

F = TypeVar("F", bound=Callable[..., Any])

_META_KEY = "restate_cli.settings"
DEFAULT_HOST = "localhost"


@dataclass
class Settings:
    yes: bool = False
    table_style: str = "compact"
    time_format: str = "human"
    connect_timeout_ms: int = 3000
    request_timeout_ms: int = 13000
    insecure: bool = False
    verbose: int = 0
    quiet: int = 0
    environment: str | None = None

    @property
    def admin_url(self) -> str:
        url = os.environ.get("RESTATE_ADMIN_URL")
        if url:
            return url
        host = os.environ.get("RESTATE_HOST") or DEFAULT_HOST
        return f"http://{host}:9070/"

    @property
    def ingress_url(self) -> str:
        url = os.environ.get("RESTATE_INGRESS_URL")
        if url:
            return url
        host = os.environ.get("RESTATE_HOST") or DEFAULT_HOST
        return f"http://{host}:8080/"

    @property
    def auth_token(self) -> str | None:
        return os.environ.get("RESTATE_AUTH_TOKEN") or None


def settings(ctx: click.Context | None = None) -> Settings:
    """The settings of the running command line (created on first use)."""
    ctx = ctx or click.get_current_context()
    found = ctx.meta.get(_META_KEY)
    if found is None:
        # like the real CLI: on CI (CI set) prompts are answered "yes"
        found = Settings(yes=bool(os.environ.get("CI")))
        ctx.meta[_META_KEY] = found
    return found


def _store(attribute: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        # defaults at an inner level must not undo a flag given at an outer level
        if param.name and ctx.get_parameter_source(param.name) is ParameterSource.DEFAULT:
            return
        current = settings(ctx)
        if attribute in ("verbose", "quiet"):
            setattr(current, attribute, getattr(current, attribute) + int(value))
        else:
            setattr(current, attribute, value)

    return callback


def _options() -> list[Callable[[F], F]]:
    return [
        click.option(
            "-v",
            "--verbose",
            count=True,
            expose_value=False,
            callback=_store("verbose"),
            help="Increase logging verbosity.",
        ),
        click.option(
            "-q",
            "--quiet",
            count=True,
            expose_value=False,
            callback=_store("quiet"),
            help="Print less.",
        ),
        click.option(
            "--table-style",
            type=click.Choice(["compact", "borders"]),
            default="compact",
            expose_value=False,
            callback=_store("table_style"),
            help="Which table output style to use.",
        ),
        click.option(
            "--time-format",
            type=click.Choice(list(TIME_FORMATS)),
            default="human",
            expose_value=False,
            callback=_store("time_format"),
            help="Timestamps: human, iso8601 (RFC 3339) or rfc2822.",
        ),
        click.option(
            "-y",
            "--yes",
            is_flag=True,
            expose_value=False,
            callback=_store("yes"),
            help='Auto answer "yes" to confirmation prompts (default when CI is set).',
        ),
        click.option(
            "--connect-timeout",
            type=int,
            default=3000,
            metavar="MS",
            expose_value=False,
            callback=_store("connect_timeout_ms"),
            help="Connection timeout for network calls, in milliseconds.",
        ),
        click.option(
            "--request-timeout",
            type=int,
            default=13000,
            metavar="MS",
            expose_value=False,
            callback=_store("request_timeout_ms"),
            help="Overall request timeout for network calls, in milliseconds.",
        ),
        click.option(
            "--insecure-skip-tls-verify",
            is_flag=True,
            expose_value=False,
            callback=_store("insecure"),
            help="Do not check the server's TLS certificate.",
        ),
        click.option(
            "-e",
            "--environment",
            expose_value=False,
            callback=_store("environment"),
            help="Accepted for compatibility; only the environment variables are read.",
        ),
    ]


def common_options(f: F) -> F:
    """The global options, on a group or a command."""
    for option in reversed(_options()):
        f = option(f)
    return f


def json_option(f: F) -> F:
    return click.option(
        "--json", "as_json", is_flag=True, help="Print machine-readable JSON instead."
    )(f)


def watch_options(f: F) -> F:
    """``-w`` / ``-n INTERVAL`` (the real CLI's watch mode)."""
    f = click.option(
        "-n",
        "interval",
        type=float,
        default=1.0,
        show_default=True,
        help="Watch interval in seconds.",
    )(f)
    return click.option("-w", "watch", is_flag=True, help="Watch mode: keep refreshing.")(f)
