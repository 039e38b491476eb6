"""JSON Patch (RFC 6902) applied to a JSON document, for ``state patch``.

Pointers follow RFC 6901 (``~1`` is ``/``, ``~0`` is ``~``; ``-`` appends to an array).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any


class JsonPatchError(ValueError):
    """The patch is malformed, a path does not exist, or a ``test`` failed."""


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise JsonPatchError(f"invalid JSON pointer {pointer!r}: must start with '/'")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _index(container: list[Any], token: str, *, for_insert: bool) -> int:
    if token == "-" and for_insert:
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise JsonPatchError(f"invalid array index {token!r}")
    index = int(token)
    limit = len(container) if for_insert else len(container) - 1
    if index > limit:
        raise JsonPatchError(f"array index {index} out of range")
    return index


def _parent(doc: Any, tokens: list[str]) -> tuple[Any, str]:
    target = doc
    for token in tokens[:-1]:
        if isinstance(target, dict):
            if token not in target:
                raise JsonPatchError(f"path segment {token!r} does not exist")
            target = target[token]
        elif isinstance(target, list):
            target = target[_index(target, token, for_insert=False)]
        else:
            raise JsonPatchError(f"cannot descend into a scalar at {token!r}")
    return target, tokens[-1]


def _get(doc: Any, pointer: str) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens)
    if isinstance(parent, dict):
        if last not in parent:
            raise JsonPatchError(f"path {pointer!r} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, for_insert=False)]
    raise JsonPatchError(f"path {pointer!r} does not exist")


def _add(doc: Any, pointer: str, value: Any) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return value
    parent, last = _parent(doc, tokens)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, for_insert=True), value)
    else:
        raise JsonPatchError(f"cannot add at {pointer!r}")
    return doc


def _remove(doc: Any, pointer: str) -> tuple[Any, Any]:
    tokens = _tokens(pointer)
    if not tokens:
        raise JsonPatchError("cannot remove the whole document")
    parent, last = _parent(doc, tokens)
    if isinstance(parent, dict):
        if last not in parent:
            raise JsonPatchError(f"path {pointer!r} does not exist")
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, for_insert=False))
    raise JsonPatchError(f"path {pointer!r} does not exist")


def _field(op: Mapping[str, Any], name: str) -> Any:
    if name not in op:
        raise JsonPatchError(f"operation {op.get('op')!r} needs {name!r}")
    return op[name]


def apply_patch(document: Any, patch: Sequence[Mapping[str, Any]]) -> Any:
    """A patched deep copy of ``document``; the input is left untouched."""
    if not isinstance(patch, list):
        raise JsonPatchError("a JSON patch is an array of operations")
    doc = copy.deepcopy(document)
    for op in patch:
        if not isinstance(op, Mapping):
            raise JsonPatchError("every patch operation is an object")
        kind = op.get("op")
        path = _field(op, "path")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(_field(op, "value")))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            if _tokens(path):
                doc, _ = _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(_field(op, "value")))
        elif kind == "move":
            source = _field(op, "from")
            doc, value = _remove(doc, source)
            doc = _add(doc, path, value)
        elif kind == "copy":
            doc = _add(doc, path, copy.deepcopy(_get(doc, _field(op, "from"))))
        elif kind == "test":
            if _get(doc, path) != _field(op, "value"):
                raise JsonPatchError(f"test failed at {path!r}")
        else:
            raise JsonPatchError(f"unknown patch operation {kind!r}")
    return doc
