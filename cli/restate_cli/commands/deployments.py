"""``restate deployments`` (alias ``dp``): register, list, describe, remove."""

from __future__ import annotations

import click

from restate_cli.client import AdminClient, path_segment
from restate_cli.commands.deployment_register import register
from restate_cli.errors import CliError
from restate_cli.groups import AliasedGroup
from restate_cli.schema_view import (
    Json,
    created_at,
    deployment_address,
    deployment_info,
    deployment_status,
    deployment_type,
    latest_revisions,
    print_handlers,
    type_line,
)
from restate_cli.session import Session, run_watched, session
from restate_cli.settings import common_options, json_option, watch_options
from restate_cli.sql import services as service_sql


@click.group("deployments", cls=AliasedGroup)
@common_options
def deployments() -> None:
    """Manages your service deployments."""


# ---- list ---------------------------------------------------------------------------------


def _active_invocations(client: AdminClient, deployment_id: str) -> int:
    return client.query_count(service_sql.pinned_invocations_count_query(deployment_id))


@click.command("list")
@watch_options
@json_option
@click.option("--extra", is_flag=True, help="Show draining status and in-flight invocations.")
@common_options
def list_deployments(extra: bool, as_json: bool, watch: bool, interval: float) -> None:
    """List the registered deployments."""
    s = session(json_mode=as_json)
    run_watched(lambda: _list(s, extra, as_json), watch=watch, interval=interval)


def _list(s: Session, extra: bool, as_json: bool) -> None:
    latest = latest_revisions(s.client.get_json("/services").get("services", []))
    listed = s.client.get_json("/deployments").get("deployments", [])
    enriched = []
    for deployment in listed:
        count = _active_invocations(s.client, deployment["id"]) if extra else None
        item = dict(deployment)
        item["status"] = deployment_status(deployment["id"], latest, count)
        if count is not None:
            item["active_invocations"] = count
        enriched.append(item)
    if as_json:
        s.out.json({"deployments": enriched})
        return
    if not enriched:
        s.out.line("No deployments were found.")
        return
    headers = ["DEPLOYMENT", "TYPE", "STATUS"]
    if extra:
        headers.append("ACTIVE-INVOCATIONS")
    headers += ["ID", "CREATED-AT", "SERVICES"]
    table = s.out.new_table(headers)
    for item in enriched:
        services = "\n".join(
            f"- {svc.get('name')} [{svc.get('revision')}]" for svc in item.get("services", [])
        )
        row = [deployment_address(item), deployment_type(item), item["status"]]
        if extra:
            row.append(str(item.get("active_invocations", 0)))
        row += [item["id"], created_at(item, s.settings.time_format), services]
        s.out.add_row(table, row)
    s.out.print(table)


# ---- describe -----------------------------------------------------------------------------


@click.command("describe")
@watch_options
@json_option
@click.option("--extra", is_flag=True, help="Show draining status and in-flight invocations.")
@click.argument("deployment_id")
@common_options
def describe(deployment_id: str, extra: bool, as_json: bool, watch: bool, interval: float) -> None:
    """Prints detailed information about a given deployment."""
    s = session(json_mode=as_json)
    run_watched(lambda: _describe(s, deployment_id, extra, as_json), watch=watch, interval=interval)


def _revision_note(service: Json, latest: dict[str, Json]) -> str:
    newest = latest.get(str(service.get("name")))
    revision = service.get("revision")
    if newest is None:
        return f"{revision} [service removed]"
    if newest.get("revision") == revision:
        return f"{revision} [Latest]"
    return (
        f"{revision} [Latest {newest.get('revision')} is in deployment ID "
        f"{newest.get('deployment_id')}]"
    )


def _describe(s: Session, deployment_id: str, extra: bool, as_json: bool) -> None:
    latest = latest_revisions(s.client.get_json("/services").get("services", []))
    detail = s.client.get_json(f"/deployments/{path_segment(deployment_id)}")
    count = _active_invocations(s.client, deployment_id) if extra else None
    status = deployment_status(deployment_id, latest, count)
    if as_json:
        body = dict(detail)
        body["status"] = status
        if count is not None:
            body["active_invocations"] = count
        body["latest_revisions"] = {
            name: {"revision": svc.get("revision"), "deployment_id": svc.get("deployment_id")}
            for name, svc in latest.items()
        }
        s.out.json(body)
        return
    s.out.heading("Deployment Information")
    pairs = deployment_info(detail, s.settings.time_format)
    pairs.append(("Status:", status))
    if count is not None:
        pairs.append(("Invocations:", str(count)))
    s.out.kv(pairs)
    s.out.line()
    s.out.heading("Services")
    for service in detail.get("services", []):
        s.out.line(f"  - {service.get('name')}")
        s.out.line(f"    Type: {type_line(service.get('ty'))}")
        s.out.line(f"    Revision: {_revision_note(service, latest)}")
        print_handlers(s.out, service, indent=4)
        s.out.line()


# ---- remove -------------------------------------------------------------------------------


@click.command("remove")
@json_option
@click.option(
    "--force", is_flag=True, help="Remove even if it is not drained (breaks in-flight invocations)."
)
@click.argument("deployment_id")
@common_options
def remove(deployment_id: str, force: bool, as_json: bool) -> None:
    """Remove a drained deployment."""
    s = session(json_mode=as_json)
    detail = s.client.get_json(f"/deployments/{path_segment(deployment_id)}")
    pinned = s.client.query_json(service_sql.pinned_invocations_per_handler_query(deployment_id))
    in_flight = sum(int(row.get("inv_count") or 0) for row in pinned)
    latest = latest_revisions(s.client.get_json("/services").get("services", []))
    status = deployment_status(deployment_id, latest, in_flight)
    s.out.kv(
        [
            *deployment_info(detail, s.settings.time_format),
            ("Status:", status),
            ("Invocations:", str(in_flight)),
        ]
    )
    if status == "Active":
        problem = (
            "Deployment is still Active: it hosts the latest revision of some of your services. "
            "Removing it makes those services unavailable and current or future invocations "
            "on them WILL fail."
        )
    elif status == "Draining":
        problem = (
            f"Deployment is still Draining. There are {in_flight} invocations that will break "
            "if you proceed with this operation."
        )
    else:
        problem = ""
    if problem:
        s.out.line()
        s.out.line(f"[ERR]: {problem}")
        if not force:
            raise CliError(
                "If you accept the risk of breaking in-flight invocations, you can use --force "
                "to forcefully remove this deployment."
            )
    s.confirm("Are you sure you want to remove this deployment?")
    s.client.request(
        "DELETE", f"/deployments/{path_segment(deployment_id)}", params={"force": "true"}
    )
    if as_json:
        s.out.json(
            {
                "id": deployment_id,
                "removed": True,
                "status_before": status,
                "active_invocations": in_flight,
            }
        )
        return
    s.out.ok(f"Deployment {deployment_id} removed successfully")


deployments.add_aliased(list_deployments, ["ls"])
deployments.add_aliased(register, ["discover", "add"])
deployments.add_aliased(describe, ["get"])
deployments.add_aliased(remove, ["rm"])
