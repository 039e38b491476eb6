"""``restate services`` (alias ``svc``): list, describe; ``status`` and ``config`` live in
their own modules and are attached here."""

from __future__ import annotations

import click

from restate_cli.client import path_segment
from restate_cli.commands.service_config import config
from restate_cli.commands.service_status import status
from restate_cli.groups import AliasedGroup
from restate_cli.schema_view import (
    deployment_address,
    deployment_info,
    deployment_type,
    flavor,
    print_handlers,
)
from restate_cli.session import Session, run_watched, session
from restate_cli.settings import common_options, json_option, watch_options


@click.group("services", cls=AliasedGroup)
@common_options
def services() -> None:
    """Manage Restate's service registry."""


@click.command("list")
@watch_options
@json_option
@click.option("--public-only", is_flag=True, help="Show only publicly accessible services.")
@click.option("--extra", is_flag=True, help="Also show each service's endpoint and handlers.")
@common_options
def list_services(
    public_only: bool, extra: bool, as_json: bool, watch: bool, interval: float
) -> None:
    """List the registered services."""
    s = session(json_mode=as_json)
    run_watched(lambda: _list(s, public_only, extra, as_json), watch=watch, interval=interval)


def _list(s: Session, public_only: bool, extra: bool, as_json: bool) -> None:
    listed = s.client.get_json("/services").get("services", [])
    by_id = {d["id"]: d for d in s.client.get_json("/deployments").get("deployments", [])}
    if public_only:
        listed = [svc for svc in listed if svc.get("public", True)]
    if as_json:
        s.out.json({"services": listed})
        return
    if not listed:
        s.out.line(
            "No services were found! Services are added by registering deployments with "
            "'restate deployments register'"
        )
        return
    headers = ["", "NAME", "REVISION", "FLAVOR", "DEPLOYMENT-TYPE", "DEPLOYMENT-ID"]
    if extra:
        headers += ["ENDPOINT", "METHODS"]
    table = s.out.new_table(headers)
    for svc in listed:
        deployment = by_id.get(str(svc.get("deployment_id")), {})
        row = [
            "[public]" if svc.get("public", True) else "[private]",
            str(svc.get("name")),
            str(svc.get("revision")),
            flavor(svc.get("ty")),
            deployment_type(deployment) if deployment else "-",
            str(svc.get("deployment_id") or "-"),
        ]
        if extra:
            row.append(deployment_address(deployment) if deployment else "-")
            row.append("\n".join(str(h.get("name")) for h in svc.get("handlers", [])))
        s.out.add_row(table, row)
    s.out.print(table)


@click.command("describe")
@watch_options
@json_option
@click.argument("name")
@common_options
def describe(name: str, as_json: bool, watch: bool, interval: float) -> None:
    """Prints detailed information about a given service."""
    s = session(json_mode=as_json)
    run_watched(lambda: _describe(s, name, as_json), watch=watch, interval=interval)


def _describe(s: Session, name: str, as_json: bool) -> None:
    service = s.client.get_json(f"/services/{path_segment(name)}")
    deployment_id = str(service.get("deployment_id") or "")
    deployment = s.client.get_json(f"/deployments/{path_segment(deployment_id)}")
    s.client.get_json("/deployments")  # as the real CLI (it lists them to find the type)
    if as_json:
        s.out.json({"service": service, "deployment": deployment})
        return
    s.out.heading("Service Information")
    pairs = [
        ("Name:", str(service.get("name"))),
        ("Service type:", str(service.get("ty"))),
        ("Revision:", str(service.get("revision"))),
        ("Public:", str(service.get("public", True)).lower()),
        ("Deployment ID:", deployment_id),
    ]
    pairs += [p for p in deployment_info(deployment, s.settings.time_format) if p[0] != "ID:"]
    s.out.kv(pairs)
    s.out.line()
    s.out.heading("Handlers")
    print_handlers(s.out, service)


services.add_aliased(list_services, ["ls"])
services.add_aliased(describe, ["get"])
services.add_aliased(status)
services.add_aliased(config)
