"""Reads the field list of a configuration Struct, for the loader and the dumper."""

from __future__ import annotations

import functools
import types
import typing
from typing import NamedTuple

import msgspec

from restate_server.config.values import Kind


class FieldSpec(NamedTuple):
    name: str  # Python attribute
    key: str  # TOML / environment key
    table: type[msgspec.Struct] | None  # set for nested tables
    kind: Kind | None  # set for values with a special format
    base: type  # the plain type, Optional and Annotated removed


@functools.cache
def fields_of(cls: type[msgspec.Struct]) -> tuple[FieldSpec, ...]:
    specs = []
    for info in msgspec.structs.fields(cls):
        tp = info.type
        kind = None
        if typing.get_origin(tp) is typing.Annotated:
            tp, *extras = typing.get_args(tp)
            kind = next((extra for extra in extras if isinstance(extra, Kind)), None)
        if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
            tp = next(arg for arg in typing.get_args(tp) if arg is not type(None))
        table = tp if isinstance(tp, type) and issubclass(tp, msgspec.Struct) else None
        specs.append(FieldSpec(info.name, info.encode_name, table, kind, tp))
    return tuple(specs)


@functools.cache
def fields_by_key(cls: type[msgspec.Struct]) -> dict[str, FieldSpec]:
    return {spec.key: spec for spec in fields_of(cls)}
