"""``restate deployments register URI``: discovery with a dry run first.

As the real CLI: ``POST /deployments`` with ``dry_run: true``; a 409 (breaking change) ends
it; a 200 without ``--force`` means the deployment exists already; otherwise the changes
are shown (services added, updated with their old deployment, removed), confirmed, and the
same request is sent with ``dry_run: false``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

from restate_cli.client import path_segment
from restate_cli.errors import CliError
from restate_cli.render import BULLET
from restate_cli.schema_view import Json, deployment_address, print_handlers, type_line
from restate_cli.session import Session, session
from restate_cli.settings import common_options, json_option


def normalize_uri(uri: str) -> str:
    """``http://host:port`` -> ``http://host:port/`` (what the server stores)."""
    if uri.startswith("arn:"):
        return uri
    parts = urlsplit(uri)
    if parts.scheme and parts.netloc and not parts.path:
        return urlunsplit((parts.scheme, parts.netloc, "/", parts.query, parts.fragment))
    return uri


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str] | None:
    if not values:
        return None
    parsed: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(
                f"invalid name=value: no `=` found in `{value}`", param_hint=what
            )
        parsed[name.strip()] = rest.strip()
    return parsed


def register_body(
    uri: str,
    *,
    headers: dict[str, str] | None,
    metadata: dict[str, str] | None,
    use_http_11: bool,
    breaking: bool,
    force: bool,
    dry_run: bool,
    assume_role_arn: str | None = None,
) -> dict[str, Any]:
    """The ``POST /deployments`` body, keys in the real CLI's order."""
    body: dict[str, Any]
    if uri.startswith("arn:"):
        body = {"arn": uri, "assume_role_arn": assume_role_arn, "additional_headers": headers}
    else:
        body = {"uri": uri, "additional_headers": headers}
    if metadata is not None:
        body["metadata"] = metadata
    if not uri.startswith("arn:"):
        body["use_http_11"] = use_http_11
    body.update({"breaking": breaking, "force": force, "dry_run": dry_run})
    return body


@click.command("register")
@json_option
@click.option("--breaking", is_flag=True, help="Allow incompatible changes to services.")
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite the deployment if it already exists (implies --breaking).",
)
@click.option("--assume-role-arn", help="Role ARN the server assumes to invoke a Lambda.")
@click.option(
    "--extra-header",
    "extra_headers",
    multiple=True,
    metavar="NAME=VALUE",
    help="Additional header sent to the endpoint (also on discovery).",
)
@click.option("--metadata", multiple=True, metavar="KEY=VALUE", help="Deployment metadata.")
@click.option("--use-http1.1", "use_http_11", is_flag=True, help="Discover over HTTP/1.1.")
@click.argument("deployment")
@common_options
def register(
    deployment: str,
    breaking: bool,
    force: bool,
    assume_role_arn: str | None,
    extra_headers: tuple[str, ...],
    metadata: tuple[str, ...],
    use_http_11: bool,
    as_json: bool,
) -> None:
    """Add or update deployments through deployment discovery."""
    s = session(json_mode=as_json)
    uri = normalize_uri(deployment)
    fields = {
        "headers": _pairs(extra_headers, "--extra-header"),
        "metadata": _pairs(metadata, "--metadata"),
        "use_http_11": use_http_11,
        "breaking": breaking,
        "force": force,
        "assume_role_arn": assume_role_arn,
    }
    response = s.client.request(
        "POST", "/deployments", json_body=register_body(uri, dry_run=True, **fields), ok=(409,)
    )
    dry = response.json() or {}
    if response.status == 409:
        raise CliError(f"{dry.get('message', 'conflicting changes')} (use --breaking or --force)")
    if response.status == 200 and not force:
        if as_json:
            s.out.json({**dry, "already_exists": True})
            return
        s.out.line(f"{BULLET} Deployment already exists with id {dry.get('id')}")
        s.out.line("       No changes will be made.")
        s.out.line()
        s.out.line(f"{BULLET} To overwrite this deployment during development, use:")
        s.out.line(f"    restate deployment register {uri} --force")
        return
    _show_changes(s, dry, existing_id=dry.get("id") if response.status == 200 else None)
    s.confirm("Are you sure you want to apply those changes?")
    final = s.client.request(
        "POST", "/deployments", json_body=register_body(uri, dry_run=False, **fields)
    )
    result = final.json() or {}
    if as_json:
        s.out.json(result)
        return
    s.out.ok("DEPLOYMENT:")
    s.out.kv([("Deployment ID:", str(result.get("id")))])
    s.out.table(
        ["SERVICE", "REV"],
        [(str(svc.get("name")), str(svc.get("revision"))) for svc in result.get("services", [])],
    )


def _show_changes(s: Session, dry: Json, *, existing_id: str | None) -> None:
    """What registering will add, update (and, when overwriting, remove)."""
    services = dry.get("services", [])
    existing_names: set[str] = set()
    if existing_id:
        existing = s.client.get_json(f"/deployments/{path_segment(existing_id)}")
        existing_names = {str(svc.get("name")) for svc in existing.get("services", [])}
    current: dict[str, Json] = {}
    for svc in services:
        if int(svc.get("revision") or 1) > 1:
            current[svc["name"]] = s.client.get_json(f"/services/{path_segment(svc['name'])}")
    old_uris: dict[str, str] = {}
    for svc in current.values():
        old_id = svc.get("deployment_id")
        if old_id and old_id not in old_uris and old_id != existing_id:
            old = s.client.get_json(f"/deployments/{path_segment(old_id)}")
            old_uris[old_id] = deployment_address(old)
    added = [svc for svc in services if svc.get("name") not in current]
    updated = [svc for svc in services if svc.get("name") in current]
    removed = sorted(existing_names - {str(svc.get("name")) for svc in services})
    if added:
        s.out.line()
        s.out.line(f"{BULLET} SERVICES THAT WILL BE ADDED:")
        for svc in added:
            s.out.line(f"  - {svc.get('name')}")
            s.out.line(f"    Type: {type_line(svc.get('ty'))}")
            print_handlers(s.out, svc, indent=4)
            s.out.line()
    if updated:
        s.out.line()
        s.out.line(f"{BULLET} SERVICES THAT WILL BE UPDATED:")
        for svc in updated:
            before = current[svc["name"]]
            s.out.line(f"  - {svc.get('name')}")
            s.out.line(f"    Type: {type_line(svc.get('ty'))}")
            s.out.line(f"    Revision: {before.get('revision')} -> {svc.get('revision')}")
            old_id = before.get("deployment_id")
            if old_id in old_uris:
                s.out.line(f"    Old Deployment: {old_uris[old_id]} (at {old_id})")
            print_handlers(s.out, svc, indent=6)
            s.out.line()
    if removed:
        s.out.line()
        s.out.line(f"{BULLET} SERVICES THAT WILL BE REMOVED FROM THIS DEPLOYMENT:")
        for name in removed:
            s.out.line(f"  - {name}")
    s.out.line()
