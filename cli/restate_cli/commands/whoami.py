"""``restate whoami``: where the CLI points and whether the admin API answers."""

from __future__ import annotations

from typing import Any

import click

from restate_cli import __version__
from restate_cli.client import SUPPORTED_API_VERSIONS
from restate_cli.errors import CliError
from restate_cli.session import session
from restate_cli.settings import common_options, json_option


@click.command("whoami")
@json_option
@common_options
def whoami(as_json: bool) -> None:
    """Prints general information about the configured environment."""
    s = session(json_mode=as_json)
    client = s.client
    info: dict[str, Any] = {
        "admin_url": client.display_url,
        "ingress_url": s.settings.ingress_url,
        "cli_version": __version__,
        "supported_admin_api": list(SUPPORTED_API_VERSIONS),
    }
    try:
        version = client.server_version()
        client.request("GET", "/health")
    except CliError as exc:
        info["healthy"] = False
        info["error"] = exc.message
        if as_json:
            s.out.json(info)
        else:
            _print_info(info)
            s.out.line(f"[ERR]: Could not connect to Admin Service: {exc.message}")
        raise CliError(exc.message) from exc
    info.update(
        {
            "healthy": True,
            "server_version": version.version,
            "min_admin_api_version": version.min_admin_api_version,
            "max_admin_api_version": version.max_admin_api_version,
            "api_prefix": version.api_prefix,
            "advertised_ingress": version.ingress_endpoint,
        }
    )
    if as_json:
        s.out.json(info)
        return
    _print_info(info)
    s.out.ok(f"Admin Service '{client.display_url}' is healthy!")
    s.out.kv(
        [
            ("Server version", version.version or "unknown"),
            ("Admin API", version.api_prefix or "unversioned"),
            ("Advertised ingress address", version.ingress_endpoint or "-"),
        ]
    )


def _print_info(info: dict[str, Any]) -> None:
    out = session().out
    out.kv(
        [
            ("Ingress base URL", str(info["ingress_url"])),
            ("Admin base URL", str(info["admin_url"])),
        ]
    )
    out.line()
    out.kv(
        [
            ("CLI version", f"restate-cli-py {info['cli_version']}"),
            ("Supported admin API", str(info["supported_admin_api"]).replace(" ", "")),
        ]
    )
    out.line()
