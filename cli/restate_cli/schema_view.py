"""How services and deployments of the admin API are described to people."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from restate_cli.render import Output
from restate_cli.timefmt import format_date, parse_timestamp

Json = Mapping[str, Any]

_FLAVOR = {"VirtualObject": "virtual object", "Workflow": "workflow", "Service": ""}
_PROTOCOL_STYLE = {"BidiStream": "Bidirectional Stream", "RequestResponse": "Request/Response"}


def flavor(service_type: str | None) -> str:
    """``virtual object`` / ``workflow`` / empty for plain services."""
    return _FLAVOR.get(service_type or "", (service_type or "").lower())


def type_line(service_type: str | None) -> str:
    """``VirtualObject virtual object`` as the real CLI writes a service's type."""
    kind = service_type or "?"
    extra = flavor(service_type)
    return f"{kind} {extra}".rstrip()


def is_keyed(service: Json) -> bool:
    return service.get("ty") in ("VirtualObject", "Workflow")


def deployment_type(deployment: Json) -> str:
    return "Lambda" if "arn" in deployment else "HTTP"


def deployment_address(deployment: Json) -> str:
    return str(deployment.get("uri") or deployment.get("arn") or "?")


def protocol_style(deployment: Json) -> str:
    value = str(deployment.get("protocol_type") or "")
    return _PROTOCOL_STYLE.get(value, value or "-")


def created_at(deployment: Json, time_format: str) -> str:
    return format_date(parse_timestamp(str(deployment.get("created_at") or "")), time_format)


def deployment_info(deployment: Json, time_format: str) -> list[tuple[str, str]]:
    """The key/value block of ``deployments describe`` (and ``services describe``)."""
    pairs = [
        ("ID:", str(deployment.get("id", "?"))),
        ("Transport:", str(deployment.get("http_version") or deployment_type(deployment))),
        ("Protocol Style:", protocol_style(deployment)),
        ("Endpoint:", deployment_address(deployment)),
    ]
    if deployment.get("sdk_version"):
        pairs.append(("SDK Version", str(deployment["sdk_version"])))
    pairs.append(("Created at:", created_at(deployment, time_format)))
    low, high = deployment.get("min_protocol_version"), deployment.get("max_protocol_version")
    if low is not None or high is not None:
        pairs.append(("Protocol:", f"[{low}, {high}]"))
    headers = deployment.get("additional_headers")
    if headers:
        pairs.append(("Additional headers:", ", ".join(f"{k}: {v}" for k, v in headers.items())))
    return pairs


def latest_revisions(services: Iterable[Json]) -> dict[str, Json]:
    """Service name -> its latest revision's metadata (``GET /services``)."""
    return {str(s.get("name")): s for s in services}


def deployment_status(
    deployment_id: str, latest: Mapping[str, Json], active_invocations: int | None
) -> str:
    """Active (hosts a latest revision), else Draining / Drained (by in-flight invocations)."""
    if any(s.get("deployment_id") == deployment_id for s in latest.values()):
        return "Active"
    if active_invocations is None:
        return "Inactive"
    return "Draining" if active_invocations > 0 else "Drained"


def handler_rows(service: Json) -> list[tuple[str, str, str]]:
    rows = []
    for handler in service.get("handlers") or []:
        rows.append(
            (
                str(handler.get("name", "?")),
                str(handler.get("input_description") or "-"),
                str(handler.get("output_description") or "-"),
            )
        )
    return rows


def print_handlers(out: Output, service: Json, indent: int = 0) -> None:
    table = out.new_table(["HANDLER", "INPUT", "OUTPUT"])
    for row in handler_rows(service):
        out.add_row(table, row)
    if indent:
        from rich.padding import Padding

        out.print(Padding(table, (0, 0, 0, indent), expand=False))
    else:
        out.print(table)
