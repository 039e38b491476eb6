"""Parsing ingress paths into what they address (http-apis.md 1.1)."""

from __future__ import annotations

from urllib.parse import unquote, unquote_to_bytes

import msgspec

from restate_server.ingress.errors import BAD_SERVICE_PATH, IngressError


class HandlerPath(msgspec.Struct, frozen=True):
    """``/{service}/{handler}``, ``/{object}/{key}/{handler}``, optionally ``/send``."""

    service: str
    handler: str
    key: str | None
    send: bool


def split_path(path: str) -> list[str]:
    """Raw segments of a path; '400 bad path' when it has too few or too many."""
    slashes = path.count("/")
    if slashes < 2 or slashes > 7:
        raise IngressError(400, f"bad path: {path}")
    return path.split("/")[1:]


def decode_segment(raw: str) -> str:
    data = unquote_to_bytes(raw)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngressError(400, f"bad path, cannot decode key: {_describe(data, exc)}") from exc


def _describe(data: bytes, exc: UnicodeDecodeError) -> str:
    return (
        f"FromUtf8Error {{ bytes: {list(data)}, error: Utf8Error {{ valid_up_to: {exc.start}, "
        f"error_len: Some({exc.end - exc.start}) }} }}"
    )


def parse_handler_path(segments: list[str], keyed: bool) -> HandlerPath:
    """Interpret segments once the first one (the service) is known to exist."""
    service = segments[0]
    rest = segments[1:]
    send = False
    expected = 2 if keyed else 1
    if len(rest) == expected + 1 and rest[-1] == "send":
        send = True
        rest = rest[:-1]
    if len(rest) != expected:
        raise IngressError(400, BAD_SERVICE_PATH)
    if keyed:
        return HandlerPath(service, unquote(rest[1]), decode_segment(rest[0]), send)
    return HandlerPath(service, unquote(rest[0]), None, send)
