"""Serialisation of handler inputs/outputs, state, and journaled values.

JSON by default; Pydantic models, msgspec Structs and dataclasses when the type
hints name them; raw bytes with :class:`BytesSerde`.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any, Generic, Protocol, TypeVar

import msgspec

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Serde(Protocol[T]):
    def serialize(self, value: T | None) -> bytes: ...

    def deserialize(self, buf: bytes) -> T | None: ...


class JsonSerde(Generic[T]):
    """``json.dumps`` / ``json.loads``; None is the empty body."""

    def serialize(self, value: T | None) -> bytes:
        if value is None:
            return b""
        return json.dumps(value, separators=(",", ":")).encode()

    def deserialize(self, buf: bytes) -> T | None:
        if not buf:
            return None
        return typing.cast(T, json.loads(buf))


class BytesSerde:
    """Raw bytes, untouched."""

    def serialize(self, value: bytes | None) -> bytes:
        return b"" if value is None else bytes(value)

    def deserialize(self, buf: bytes) -> bytes | None:
        return buf


class MsgspecJsonSerde(Generic[T]):
    """msgspec Structs and dataclasses to and from JSON objects (nested ones and lists
    included): msgspec encodes and validates both."""

    def __init__(self, type_: type[T]) -> None:
        self._type = type_
        self._decoder = msgspec.json.Decoder(type_)

    def serialize(self, value: T | None) -> bytes:
        return b"" if value is None else msgspec.json.encode(value)

    def deserialize(self, buf: bytes) -> T | None:
        return None if not buf else self._decoder.decode(buf)


class PydanticJsonSerde(Generic[T]):
    def __init__(self, model: type[T]) -> None:
        self._model = model

    def serialize(self, value: T | None) -> bytes:
        if value is None:
            return b""
        return typing.cast(Any, value).model_dump_json().encode()  # type: ignore[no-any-return]

    def deserialize(self, buf: bytes) -> T | None:
        if not buf:
            return None
        return typing.cast(T, typing.cast(Any, self._model).model_validate_json(buf))


class DefaultSerde(Generic[T]):
    """Picks the serde from a type hint (or, when writing, from the value's type)."""

    def __init__(self, type_hint: Any = None) -> None:
        self._type_hint = type_hint
        self._inner: Any = serde_for(type_hint) if type_hint is not None else JsonSerde()

    def serialize(self, value: T | None) -> bytes:
        if value is None:
            return b""
        if isinstance(self._inner, JsonSerde) and not isinstance(
            value, (dict, list, str, int, float, bool)
        ):
            return typing.cast(bytes, serde_for(type(value)).serialize(value))
        return typing.cast(bytes, self._inner.serialize(value))

    def deserialize(self, buf: bytes) -> T | None:
        return typing.cast("T | None", self._inner.deserialize(buf))


def _is_pydantic(tp: Any) -> bool:
    try:
        from pydantic import BaseModel
    except ImportError:  # pragma: no cover - pydantic is optional
        return False
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def unwrap_optional(tp: Any) -> Any:
    """``T | None`` -> ``T``."""
    args = typing.get_args(tp)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return tp


def serde_for(type_hint: Any) -> Any:
    """The serde a type hint asks for."""
    tp = unwrap_optional(type_hint)
    if tp is bytes:
        return BytesSerde()
    if _is_pydantic(tp):
        return PydanticJsonSerde(tp)
    if isinstance(tp, type) and (issubclass(tp, msgspec.Struct) or dataclasses.is_dataclass(tp)):
        return MsgspecJsonSerde(tp)
    return JsonSerde()


def json_schema_for(type_hint: Any) -> Any:
    """A JSON schema for the discovery manifest, when one can be derived."""
    tp = unwrap_optional(type_hint)
    if tp is None or tp is type(None) or tp is bytes:
        return None
    if _is_pydantic(tp):
        return typing.cast(Any, tp).model_json_schema()
    try:
        return msgspec.json.schema(tp)
    except (TypeError, msgspec.ValidationError):
        return None
