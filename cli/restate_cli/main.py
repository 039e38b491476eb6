"""Entry point of the ``restate`` console script: the command tree and error reporting.

Errors end the process with one ``Error: …`` line on stderr and exit code 1 (usage errors:
2, as click and the real CLI do; Ctrl-C: 130).
"""

from __future__ import annotations

import sys

import click

from restate_cli import __version__
from restate_cli.commands.deployments import deployments
from restate_cli.commands.invocations import invocations
from restate_cli.commands.services import services
from restate_cli.commands.sql import sql
from restate_cli.commands.state import state
from restate_cli.commands.whoami import whoami
from restate_cli.errors import CliError
from restate_cli.groups import AliasedGroup
from restate_cli.settings import common_options

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group("restate", cls=AliasedGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="restate-cli-py")
@common_options
def cli() -> None:
    """Restate Command Line Interface.

    Inspect and manage a Restate server: deployments, services, invocations, state and
    SQL introspection. Configure it with RESTATE_ADMIN_URL, RESTATE_INGRESS_URL (or
    RESTATE_HOST) and RESTATE_AUTH_TOKEN.
    """


cli.add_aliased(whoami)
cli.add_aliased(services, ["svc"])
cli.add_aliased(deployments, ["dp"])
cli.add_aliased(invocations, ["inv"])
cli.add_aliased(sql)
cli.add_aliased(state, ["kv"])


def main(argv: list[str] | None = None) -> None:
    try:
        code = cli.main(args=argv, prog_name="restate", standalone_mode=False)
    except CliError as exc:
        click.echo(f"Error: {exc.message}", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:  # a bug: one line, the traceback only when asked for (-v)
        if "-v" in (argv or sys.argv) or "--verbose" in (argv or sys.argv):
            raise
        click.echo(
            f"Error: unexpected {type(exc).__name__}: {exc} (run with -v for details)", err=True
        )
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
