"""Writes a :class:`Config` as TOML, in the real server's ``--dump-config`` style:
friendly durations (``1m``), binary byte counts (``32.0 MiB``), unset values left out.
The output loads back to the same configuration."""

from __future__ import annotations

import json

import msgspec

from restate_server.config.schema import fields_of


def dump_config(config: msgspec.Struct) -> str:
    lines: list[str] = []
    _write_table(config, (), lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _write_table(table: msgspec.Struct, path: tuple[str, ...], lines: list[str]) -> None:
    if path:
        lines += ["", f"[{'.'.join(path)}]"]
    subtables: list[tuple[str, msgspec.Struct]] = []
    for spec in fields_of(type(table)):
        value = getattr(table, spec.name)
        if spec.table is not None:
            subtables.append((spec.key, value))
            continue
        encoded = spec.kind.encode(value) if spec.kind is not None else value
        if encoded is not None:
            lines.append(f"{spec.key} = {_toml_value(encoded)}")
    for key, subtable in subtables:
        _write_table(subtable, (*path, key), lines)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string, except for DEL, which TOML wants escaped.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    raise TypeError(f"cannot write {type(value).__name__} to TOML")
