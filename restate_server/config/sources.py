"""Where configuration values come from: the TOML file, ``RESTATE_*`` variables, flags.

Each source becomes a :class:`Layer`: a nested dict keyed by kebab-case names, plus a
way to say where a key came from, for error messages. The environment mapping is the
real server's (figment): strip the ``RESTATE_`` prefix, split on ``__`` for nesting,
lower-case, turn ``_`` into ``-``; then ``RUST_LOG``, if set, overrides ``log-filter``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from typing import NamedTuple

from restate_server.config.errors import ConfigError
from restate_server.config.values import Text

ENV_PREFIX = "RESTATE_"
CONFIG_FILE_ENV = "RESTATE_CONFIG"

KeyPath = tuple[str, ...]


class Layer(NamedTuple):
    data: dict[str, object]
    origin: Callable[[KeyPath], str]


def file_layer(path: str) -> Layer:
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file '{path}': {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not valid TOML: {exc}") from None
    return Layer(data, lambda _key: f"in config file {path}")


def env_key_path(name: str) -> KeyPath | None:
    """``RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT`` -> worker.invoker.inactivity-timeout."""
    if name[: len(ENV_PREFIX)].upper() != ENV_PREFIX:
        return None
    parts = name[len(ENV_PREFIX) :].split("__")
    if not all(parts):
        return None
    return tuple(part.lower().replace("_", "-") for part in parts)


def env_layer(env: Mapping[str, str]) -> Layer:
    data: dict[str, object] = {}
    names: dict[KeyPath, str] = {}
    for name in sorted(env):
        path = env_key_path(name)
        if path is None or name.upper() == CONFIG_FILE_ENV:
            continue
        _insert(data, path, Text(env[name]))
        names[path] = name
    if "RUST_LOG" in env:
        _insert(data, ("log-filter",), Text(env["RUST_LOG"]))
        names[("log-filter",)] = "RUST_LOG"
    return Layer(data, lambda key: f"from environment variable {names.get(key, 'RESTATE_*')}")


def overrides_layer(overrides: Mapping[str, object]) -> Layer:
    """Command-line values: kebab (or snake) keys, dotted or nested; None means unset."""
    data: dict[str, object] = {}
    _add_overrides(data, (), overrides)
    return Layer(data, lambda _key: "from the command line")


def _add_overrides(data: dict[str, object], prefix: KeyPath, values: Mapping[str, object]) -> None:
    for key, value in values.items():
        path = prefix + tuple(part.replace("_", "-") for part in key.split("."))
        if isinstance(value, Mapping):
            _add_overrides(data, path, value)
        elif value is not None:
            if isinstance(value, os.PathLike):
                value = os.fspath(value)
            _insert(data, path, Text(value) if isinstance(value, str) else value)


def _insert(data: dict[str, object], path: KeyPath, value: object) -> None:
    node = data
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[path[-1]] = value
