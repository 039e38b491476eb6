"""A key's state as the CLI handles it: bytes per entry, shown and edited as JSON.

The *state version* is what ``POST /services/{name}/state`` compares against the current
state to drop stale edits: SHA-256 over the entries sorted by key, entry ``i`` fed as
``i`` (8 bytes, big-endian), ``0x01``, the key, ``0x02``, the value, ``0x03``; written as
URL-safe base64 without padding. The server recomputes it, so it must be exact.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

StateBytes = dict[str, bytes]


class StateCodecError(ValueError):
    """A value does not convert (not JSON, not base64)."""


def state_version(state: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    for index, key in enumerate(sorted(state)):
        digest.update(index.to_bytes(8, "big"))
        digest.update(b"\x01")
        digest.update(key.encode())
        digest.update(b"\x02")
        digest.update(state[key])
        digest.update(b"\x03")
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def state_from_rows(rows: Iterable[Mapping[str, Any]]) -> StateBytes:
    """``/query`` rows with ``key`` and a hex ``value`` (JSON binary encoding)."""
    state: StateBytes = {}
    for row in rows:
        state[str(row["key"])] = bytes.fromhex(str(row.get("value", "")))
    return state


def to_json_values(state: Mapping[str, bytes], *, binary: bool) -> dict[str, Any]:
    """Each value parsed as JSON, or (``binary``) as a base64 string."""
    values: dict[str, Any] = {}
    for key in sorted(state):
        raw = state[key]
        if binary:
            values[key] = base64.urlsafe_b64encode(raw).decode()
            continue
        try:
            values[key] = json.loads(raw.decode())
        except (UnicodeDecodeError, ValueError) as exc:
            raise StateCodecError(
                f'unable to convert the value of state key "{key}" to JSON. '
                "Pass --binary to render it as a base64 string instead"
            ) from exc
    return values


def from_json_values(values: Mapping[str, Any], *, binary: bool) -> StateBytes:
    """The inverse of ``to_json_values``: compact JSON bytes, or decoded base64 strings."""
    state: StateBytes = {}
    for key, value in values.items():
        if binary:
            if not isinstance(value, str):
                raise StateCodecError(f'the value of state key "{key}" must be a base64 string')
            state[key] = _decode_base64(key, value)
        else:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            state[key] = text.encode()
    return state


def _decode_base64(key: str, text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        if "-" in padded or "_" in padded:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise StateCodecError(f'the value of state key "{key}" is not valid base64') from exc


def new_state_body(key: str, state: Mapping[str, bytes], version: str | None) -> dict[str, Any]:
    """The body of ``POST /services/{name}/state`` (values as byte arrays)."""
    return {
        "version": version,
        "object_key": key,
        "new_state": {k: list(v) for k, v in state.items()},
    }
