"""The command tree of our ``restate`` CLI: the real CLI's commands, aliases and flags
(no server: only help and usage errors)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from restate_cli.main import cli
from restate_cli.settings import common_options, settings

COMMANDS = [
    ["whoami"],
    ["deployments", "register"],
    ["deployments", "list"],
    ["deployments", "describe"],
    ["deployments", "remove"],
    ["services", "list"],
    ["services", "describe"],
    ["services", "status"],
    ["services", "config", "view"],
    ["services", "config", "patch"],
    ["services", "config", "edit"],
    ["invocations", "list"],
    ["invocations", "describe"],
    ["invocations", "cancel"],
    ["invocations", "kill"],
    ["invocations", "purge"],
    ["invocations", "pause"],
    ["invocations", "resume"],
    ["invocations", "restart-as-new"],
    ["invocations", "watch"],
    ["invocations", "journal"],
    ["state", "get"],
    ["state", "edit"],
    ["state", "patch"],
    ["state", "clear"],
    ["sql"],
]


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help_and_the_global_flags(path: list[str]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    for flag in ("--yes", "--table-style", "--time-format", "--connect-timeout"):
        assert flag in result.output


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        (["dp", "ls"], "deployments list"),
        (["dp", "add"], "deployments register"),
        (["dp", "discover"], "deployments register"),
        (["dp", "get"], "deployments describe"),
        (["dp", "rm"], "deployments remove"),
        (["svc", "ls"], "services list"),
        (["svc", "get"], "services describe"),
        (["inv", "ls"], "invocations list"),
        (["inv", "get"], "invocations describe"),
        (["inv", "rm"], "invocations purge"),
        (["inv", "restart"], "invocations restart-as-new"),
        (["kv", "get"], "state get"),
    ],
)
def test_aliases(alias: list[str], canonical: str) -> None:
    result = CliRunner().invoke(cli, [*alias, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: restate {canonical}" in result.output


def test_real_cli_flags_are_accepted_where_scripts_put_them() -> None:
    result = CliRunner().invoke(cli, ["invocations", "list", "--help"])
    for flag in (
        "--service",
        "--handler",
        "--key",
        "--deployment",
        "--status",
        "--all",
        "--completion-result",
        "--virtual-objects-only",
        "--zombie",
        "--limit",
        "--oldest-first",
        "-w",
        "-n",
    ):
        assert flag in result.output
    register = CliRunner().invoke(cli, ["dp", "register", "--help"]).output
    for flag in ("--breaking", "--force", "--extra-header", "--metadata", "--use-http1.1"):
        assert flag in register
    sql_help = CliRunner().invoke(cli, ["sql", "--help"]).output
    assert "--json" in sql_help and "--jsonl" in sql_help


@pytest.mark.parametrize(
    "args",
    [
        ["invocations", "list", "--completion-result", "success", "--status", "running"],
        ["invocations", "list", "--all", "--completion-result", "success"],
        ["invocations", "list", "--status", "nope"],
        ["state", "patch", "Counter", "k1"],  # --patch is required
        ["deployments", "register"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output


def _probe_group() -> click.Group:
    """A group and command with the global options, echoing the shared settings."""

    @click.group()
    @common_options
    def root() -> None:
        pass

    @root.command()
    @common_options
    def show() -> None:
        current = settings()
        click.echo(f"yes={current.yes} style={current.table_style} verbose={current.verbose}")

    return root


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["show"], {}, "yes=False style=compact verbose=0"),
        (["--yes", "show"], {}, "yes=True style=compact verbose=0"),
        (["show", "-y", "--table-style", "borders"], {}, "yes=True style=borders verbose=0"),
        (["--table-style", "borders", "show"], {}, "yes=False style=borders verbose=0"),
        (["-v", "show", "-v"], {}, "yes=False style=compact verbose=2"),
        (["show"], {"CI": "true"}, "yes=True style=compact verbose=0"),
    ],
)
def test_global_options_work_before_and_after_the_command(
    args: list[str], env: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(_probe_group(), args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == expected
