"""``restate state`` (alias ``kv``): get, edit, patch, clear the state of object and
workflow keys.

Reads go through ``/query`` (``state`` table); writes replace a key's whole state with
``POST /services/{name}/state``, carrying the version of the state just read so that the
server drops the write if the state changed meanwhile (``--force`` sends no version).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import click

from restate_cli.client import path_segment
from restate_cli.errors import CliError
from restate_cli.groups import AliasedGroup
from restate_cli.json_patch import JsonPatchError, apply_patch
from restate_cli.schema_view import is_keyed
from restate_cli.session import Session, run_watched, session
from restate_cli.settings import common_options, json_option, watch_options
from restate_cli.sql import state as sql
from restate_cli.state_codec import (
    StateBytes,
    StateCodecError,
    from_json_values,
    new_state_body,
    state_from_rows,
    state_version,
    to_json_values,
)


@click.group("state", cls=AliasedGroup)
@common_options
def state() -> None:
    """Manage service state."""


def read_state(s: Session, service: str, key: str) -> StateBytes:
    """Check the service is keyed, then read the key's entries."""
    metadata = s.client.get_json(f"/services/{path_segment(service)}")
    if not is_keyed(metadata):
        raise CliError("Only virtual objects and workflows support state")
    return state_from_rows(s.client.query_json(sql.state_of_key_query(service, key)))


def _values(state_bytes: StateBytes, binary: bool) -> dict[str, Any]:
    try:
        return to_json_values(state_bytes, binary=binary)
    except StateCodecError as exc:
        raise CliError(str(exc)) from exc


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _print_state(s: Session, values: dict[str, Any]) -> None:
    s.out.table(["KEY", "VALUE"], [(k, _pretty(v)) for k, v in values.items()])


binary_option = click.option("--binary", is_flag=True, help="Show and edit values as base64.")
force_option = click.option(
    "-f", "--force", is_flag=True, help="Ignore the current version (overwrite any change)."
)


@click.command("get")
@watch_options
@json_option
@binary_option
@click.option("-p", "--plain", is_flag=True, help="Only print the state as a JSON object.")
@click.argument("service")
@click.argument("key")
@common_options
def get(
    service: str, key: str, binary: bool, plain: bool, as_json: bool, watch: bool, interval: float
) -> None:
    """Get the persisted state stored for a service key."""
    s = session(json_mode=as_json)

    def render() -> None:
        values = _values(read_state(s, service, key), binary)
        if as_json:
            s.out.json({"service": service, "key": key, "state": values})
        elif plain:
            s.out.raw(json.dumps(values, separators=(",", ":"), ensure_ascii=False) + "\n")
        else:
            s.out.heading("State")
            s.out.line()
            s.out.kv([("Service", service), ("Key", key)])
            s.out.line()
            _print_state(s, values)

    run_watched(render, watch=watch, interval=interval)


def submit(
    s: Session,
    title: str,
    service: str,
    key: str,
    new_values: dict[str, Any],
    current: StateBytes,
    *,
    binary: bool,
    force: bool,
    as_json: bool,
) -> None:
    """Show the new state, confirm, and send it with the version of ``current``."""
    try:
        new_state = from_json_values(new_values, binary=binary)
    except StateCodecError as exc:
        raise CliError(str(exc)) from exc
    s.out.heading(title)
    s.out.line()
    s.out.kv(
        [
            ("Service", service),
            ("Key", key),
            ("Force?", str(force).lower()),
            ("Binary?", str(binary).lower()),
        ]
    )
    s.out.line()
    s.out.heading("New State")
    _print_state(s, new_values)
    s.out.line()
    s.out.line("About to submit the new state mutation to the system for processing.")
    s.out.line(
        "If there are ongoing invocations for this key this mutation will be enqueued to be "
        "processed after them."
    )
    s.out.line()
    s.confirm("Are you sure?")
    version = None if force else state_version(current)
    body = new_state_body(key, new_state, version)
    s.client.request("POST", f"/services/{path_segment(service)}/state", json_body=body)
    if as_json:
        s.out.json({"service": service, "key": key, "version": version, "state": new_values})
        return
    s.out.line()
    s.out.line("Successfully submitted state update.")


@click.command("edit")
@json_option
@binary_option
@force_option
@click.argument("service")
@click.argument("key")
@common_options
def edit(service: str, key: str, binary: bool, force: bool, as_json: bool) -> None:
    """Edit the persisted state stored for a service key ($EDITOR, JSON)."""
    s = session(json_mode=as_json)
    current = read_state(s, service, key)
    values = _values(current, binary)
    edited = click.edit(_pretty(values), extension=".json", require_save=False)
    if edited is None:
        raise CliError("the editor did not return the state")
    try:
        new_values = json.loads(edited)
    except ValueError as exc:
        raise CliError(f"the edited state is not valid JSON: {exc}") from exc
    if not isinstance(new_values, dict):
        raise CliError("the edited state must be a JSON object (state key -> value)")
    submit(
        s,
        "State Update",
        service,
        key,
        new_values,
        current,
        binary=binary,
        force=force,
        as_json=as_json,
    )


@click.command("patch")
@json_option
@binary_option
@force_option
@click.option("-p", "--patch", "patch_text", required=True, help="JSON patch (RFC 6902).")
@click.argument("service")
@click.argument("key")
@common_options
def patch(
    service: str, key: str, patch_text: str, binary: bool, force: bool, as_json: bool
) -> None:
    """Patch persisted key-value state for a service key."""
    s = session(json_mode=as_json)
    try:
        operations = json.loads(patch_text)
    except ValueError as exc:
        raise CliError(f"--patch is not valid JSON: {exc}") from exc
    current = read_state(s, service, key)
    values = _values(current, binary)
    try:
        new_values = apply_patch(values, operations)
    except JsonPatchError as exc:
        raise CliError(f"cannot apply the patch: {exc}") from exc
    if not isinstance(new_values, dict):
        raise CliError("the patched state must stay a JSON object (state key -> value)")
    submit(
        s,
        "Patch State",
        service,
        key,
        new_values,
        current,
        binary=binary,
        force=force,
        as_json=as_json,
    )


@click.command("clear")
@json_option
@force_option
@click.argument("query")
@common_options
def clear(query: str, force: bool, as_json: bool) -> None:
    """Clear the state of a service (QUERY is NAME) or of one key (NAME/KEY)."""
    s = session(json_mode=as_json)
    service, sep, key = query.partition("/")
    rows = s.client.query_json(sql.state_to_clear_query(service, key if sep else None))
    per_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        per_key[str(row.get("service_key"))].append(row)
    if not per_key:
        raise CliError("No state found!")
    s.out.table(
        ["SERVICE/KEY", "STATE"],
        [
            (f"{service}/{k}", "[" + ", ".join(sorted(str(r.get("key")) for r in entries)) + "]")
            for k, entries in per_key.items()
        ],
    )
    s.out.line()
    s.out.line("Going to remove all the aforementioned state entries.")
    s.out.line("About to submit the new state mutation to the system for processing.")
    s.out.line(
        "If there are currently active invocations, then this mutation will be enqueued to "
        "be processed after them."
    )
    s.out.line()
    s.confirm("Are you sure?")
    cleared = []
    for service_key, entries in per_key.items():
        version = None if force else state_version(state_from_rows(entries))
        body = new_state_body(service_key, {}, version)
        s.client.request("POST", f"/services/{path_segment(service)}/state", json_body=body)
        cleared.append({"key": service_key, "version": version})
    if as_json:
        s.out.json({"service": service, "cleared": cleared})
        return
    s.out.line()
    s.out.line("Enqueued successfully for processing")


state.add_aliased(get)
state.add_aliased(edit)
state.add_aliased(patch)
state.add_aliased(clear)
