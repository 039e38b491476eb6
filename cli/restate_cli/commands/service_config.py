"""``restate services config view|patch|edit``: a service's retention, timeouts and
visibility (``PATCH /services/{name}``)."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import click

from restate_cli.client import path_segment
from restate_cli.durations import DurationError, normalize_duration
from restate_cli.errors import CliError
from restate_cli.groups import AliasedGroup
from restate_cli.schema_view import Json
from restate_cli.session import Session, session
from restate_cli.settings import common_options, json_option

# PATCH body keys, in the real CLI's order, with how ``config view`` labels them
PATCH_FIELDS: tuple[tuple[str, str], ...] = (
    ("public", "Public"),
    ("idempotency_retention", "Idempotent requests retention"),
    ("workflow_completion_retention", "Workflow retention time"),
    ("journal_retention", "Journal retention"),
    ("inactivity_timeout", "Inactivity timeout"),
    ("abort_timeout", "Abort timeout"),
)
DURATION_FIELDS = tuple(name for name, _ in PATCH_FIELDS if name != "public")


def patch_body(changes: dict[str, Any]) -> dict[str, Any]:
    """All six keys, the unchanged ones ``null`` (what the real CLI sends)."""
    return {name: changes.get(name) for name, _ in PATCH_FIELDS}


def current_config(service: Json) -> dict[str, Any]:
    config_view: dict[str, Any] = {"name": service.get("name"), "ty": service.get("ty")}
    for name, _ in PATCH_FIELDS:
        if name in service:
            config_view[name] = service[name]
    for extra in ("enable_lazy_state", "retry_policy"):
        if extra in service:
            config_view[extra] = service[extra]
    return config_view


@click.group("config", cls=AliasedGroup)
@common_options
def config() -> None:
    """Configure a service."""


@click.command("view")
@json_option
@click.argument("service")
@common_options
def view(service: str, as_json: bool) -> None:
    """Dump the current service configuration."""
    s = session(json_mode=as_json)
    metadata = s.client.get_json(f"/services/{path_segment(service)}")
    shown = current_config(metadata)
    if as_json:
        s.out.json(shown)
        return
    s.out.kv([("Name:", str(shown["name"])), ("Service type:", str(shown["ty"]))])
    for name, label in PATCH_FIELDS:
        if name in shown:
            s.out.line()
            value = shown[name]
            s.out.kv([(f"{label}:", str(value).lower() if isinstance(value, bool) else str(value))])
    if "enable_lazy_state" in shown:
        s.out.line()
        s.out.kv([("Enable lazy state:", str(shown["enable_lazy_state"]).lower())])
    policy = shown.get("retry_policy")
    if isinstance(policy, dict):
        s.out.line()
        s.out.line(" Retry Policy:")
        labels = {
            "max_attempts": "Max attempts:",
            "on_max_attempts": "On max attempts:",
            "initial_interval": "Initial interval:",
            "exponentiation_factor": "Exponentiation factor:",
            "max_interval": "Max interval:",
        }
        s.out.kv(
            [(label, _plain(policy[key])) for key, label in labels.items() if key in policy],
            indent=2,
        )


def _plain(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value is None:
        return "unlimited"
    return str(value)


def _duration(option: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalize_duration(value)
    except DurationError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc


def _apply(s: Session, service: str, changes: dict[str, Any], as_json: bool) -> None:
    labels = dict(PATCH_FIELDS)
    s.out.kv(
        [
            (f"{labels[k]}:", str(v).lower() if isinstance(v, bool) else str(v))
            for k, v in changes.items()
        ]
    )
    s.confirm("Are you sure you want to apply these changes?")
    updated = s.client.request(
        "PATCH", f"/services/{path_segment(service)}", json_body=patch_body(changes)
    ).json()
    if as_json:
        s.out.json(updated)


@click.command("patch")
@json_option
@click.option(
    "--public", type=click.Choice(["true", "false"]), help="Reachable through the ingress."
)
@click.option("--idempotency-retention", help="Retention of idempotent requests (e.g. 1d, PT1H).")
@click.option("--workflow-completion-retention", help="Retention of completed workflows.")
@click.option("--journal-retention", help="Retention of journals after completion.")
@click.option("--inactivity-timeout", help="Inactivity timeout before asking to suspend.")
@click.option("--abort-timeout", help="Timeout after which a non-suspending invocation is aborted.")
@click.argument("service")
@common_options
def patch(
    service: str,
    public: str | None,
    idempotency_retention: str | None,
    workflow_completion_retention: str | None,
    journal_retention: str | None,
    inactivity_timeout: str | None,
    abort_timeout: str | None,
    as_json: bool,
) -> None:
    """Patch the service configuration with the provided arguments."""
    s = session(json_mode=as_json)
    given: dict[str, Any] = {
        "public": None if public is None else public == "true",
        "idempotency_retention": _duration("--idempotency-retention", idempotency_retention),
        "workflow_completion_retention": _duration(
            "--workflow-completion-retention", workflow_completion_retention
        ),
        "journal_retention": _duration("--journal-retention", journal_retention),
        "inactivity_timeout": _duration("--inactivity-timeout", inactivity_timeout),
        "abort_timeout": _duration("--abort-timeout", abort_timeout),
    }
    changes = {k: v for k, v in given.items() if v is not None}
    if not changes:
        raise CliError("Nothing to patch: pass at least one of the configuration options")
    _apply(s, service, changes, as_json)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(str(value))


@click.command("edit")
@json_option
@click.argument("service")
@common_options
def edit(service: str, as_json: bool) -> None:
    """Interactively edit the service configuration ($EDITOR, TOML)."""
    s = session(json_mode=as_json)
    metadata = s.client.get_json(f"/services/{path_segment(service)}")
    before = {name: metadata[name] for name, _ in PATCH_FIELDS if name in metadata}
    lines = [f"# Configuration of service {service}; save and quit to apply.", ""]
    lines += [f"{name} = {_toml_value(value)}" for name, value in before.items()]
    edited = click.edit("\n".join(lines) + "\n", extension=".toml", require_save=False)
    if edited is None:
        raise CliError("the editor did not return the configuration")
    try:
        after = tomllib.loads(edited)
    except tomllib.TOMLDecodeError as exc:
        raise CliError(f"invalid TOML: {exc}") from exc
    changes: dict[str, Any] = {}
    for name, value in after.items():
        if name not in dict(PATCH_FIELDS) or before.get(name) == value:
            continue
        changes[name] = value if name == "public" else _duration(name, str(value))
    if not changes:
        s.out.line("No changes.")
        return
    _apply(s, service, changes, as_json)


config.add_aliased(view)
config.add_aliased(patch)
config.add_aliased(edit)
