"""The state version hash (verified against the versions the real CLI sent) and the state
conversions and JSON patch behind ``state get|edit|patch|clear``."""

from __future__ import annotations

import pytest

from restate_cli.json_patch import JsonPatchError, apply_patch
from restate_cli.state_codec import (
    StateCodecError,
    from_json_values,
    new_state_body,
    state_from_rows,
    state_version,
    to_json_values,
)


@pytest.mark.parametrize(
    ("rows", "version"),
    [
        # restate state patch Counter k1 (captured)
        (
            [
                {"key": "last", "value": "7b226174223a2278222c2264656c7461223a327d"},
                {"key": "count", "value": "37"},
            ],
            "lOJTTgeJcqq3CMxwZi90Y9ahTNpwDKsa3NAnPiWUkUQ",
        ),
        # restate state clear Counter/k1 (captured)
        (
            [
                {"key": "last", "value": "7b226174223a2278222c2264656c7461223a327d"},
                {"key": "count", "value": "3432"},
            ],
            "BF1L4gHohNziz5UfCd_tsMz1GHKFYQ3c49l4OU0zzvA",
        ),
        # restate state edit Counter e1 against restate-server 1.7.12
        ([{"key": "count", "value": "33"}], "X8Cq4Jfv9hcCDgF5_aMCsyO3hDyAGg7_ddAAc6qw9Jw"),
        ([], "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"),
    ],
)
def test_state_version_matches_the_real_cli(rows: list[dict[str, str]], version: str) -> None:
    assert state_version(state_from_rows(rows)) == version


def test_version_ignores_row_order() -> None:
    a = state_from_rows([{"key": "a", "value": "31"}, {"key": "b", "value": "32"}])
    b = state_from_rows([{"key": "b", "value": "32"}, {"key": "a", "value": "31"}])
    assert state_version(a) == state_version(b)


def test_json_values_round_trip() -> None:
    state = {"count": b"7", "last": b'{"at":"x","delta":2}'}
    values = to_json_values(state, binary=False)
    assert values == {"count": 7, "last": {"at": "x", "delta": 2}}
    assert list(values) == ["count", "last"]  # sorted, like the real CLI's --plain
    assert from_json_values({"count": 42, "s": "é"}, binary=False) == {
        "count": b"42",
        "s": '"é"'.encode(),
    }


def test_non_json_values_need_binary() -> None:
    state = {"bin": b"\xff\x00\x01", "raw": b"hello"}
    with pytest.raises(StateCodecError, match='state key "bin"'):
        to_json_values(state, binary=False)
    # URL-safe base64 with padding, as the real CLI shows it
    assert to_json_values(state, binary=True) == {"bin": "_wAB", "raw": "aGVsbG8="}
    assert from_json_values({"bin": "_wAB", "raw": "aGVsbG8="}, binary=True) == state
    assert from_json_values({"raw": "aGVsbG8"}, binary=True) == {"raw": b"hello"}
    with pytest.raises(StateCodecError):
        from_json_values({"raw": 5}, binary=True)


def test_new_state_body_is_byte_arrays() -> None:
    body = new_state_body("k1", {"count": b"42"}, "v1")
    assert body == {"version": "v1", "object_key": "k1", "new_state": {"count": [52, 50]}}
    assert new_state_body("k1", {}, None) == {"version": None, "object_key": "k1", "new_state": {}}


def test_json_patch_operations() -> None:
    doc = {"count": 7, "last": {"at": "x"}, "list": [1, 2]}
    patched = apply_patch(
        doc,
        [
            {"op": "replace", "path": "/count", "value": 42},
            {"op": "add", "path": "/last/delta", "value": 2},
            {"op": "add", "path": "/list/-", "value": 3},
            {"op": "remove", "path": "/list/0"},
            {"op": "copy", "from": "/count", "path": "/copy"},
            {"op": "move", "from": "/copy", "path": "/moved"},
            {"op": "test", "path": "/moved", "value": 42},
            {"op": "add", "path": "/a~1b", "value": True},
        ],
    )
    assert patched == {
        "count": 42,
        "last": {"at": "x", "delta": 2},
        "list": [2, 3],
        "moved": 42,
        "a/b": True,
    }
    assert doc["count"] == 7  # the input is not modified


@pytest.mark.parametrize(
    "patch",
    [
        [{"op": "replace", "path": "/nope", "value": 1}],
        [{"op": "remove", "path": "/nope"}],
        [{"op": "test", "path": "/count", "value": 8}],
        [{"op": "frobnicate", "path": "/count"}],
        [{"op": "add", "path": "count", "value": 1}],
        {"op": "add"},
    ],
)
def test_json_patch_errors(patch: object) -> None:
    with pytest.raises(JsonPatchError):
        apply_patch({"count": 7}, patch)  # type: ignore[arg-type]
