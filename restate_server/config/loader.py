"""Builds a :class:`Config` from its sources, in the real server's order of precedence:
defaults < TOML file < ``RESTATE_*`` environment (then ``RUST_LOG``) < command line.

Each source is checked on its own, so an error names both the key and its origin;
the checked values are then merged and the derived values settled. Unknown keys are
ignored, as the real server does, but reported in one warning.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from restate_server.config.errors import ConfigError
from restate_server.config.model import (
    ADMIN_PORT,
    INGRESS_PORT,
    NODE_PORT,
    AdminOptions,
    Config,
    IngressOptions,
)
from restate_server.config.schema import fields_by_key, fields_of
from restate_server.config.sources import (
    CONFIG_FILE_ENV,
    KeyPath,
    Layer,
    env_layer,
    file_layer,
    overrides_layer,
)
from restate_server.config.values import (
    convert_plain,
    format_bind_address,
    normalize_advertised_address,
    parse_bind_address,
)

log = logging.getLogger("restate_server.config")

S = TypeVar("S", bound=msgspec.Struct)
Listener = TypeVar("Listener", IngressOptions, AdminOptions)


def load_config(
    config_file: str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> Config:
    """``config_file`` falls back to ``RESTATE_CONFIG`` in ``env`` (default: os.environ);
    ``overrides`` holds command-line values by key, e.g. ``{"base-dir": "/data"}``."""
    env = os.environ if env is None else env
    config_file = config_file or env.get(CONFIG_FILE_ENV) or None
    layers = [file_layer(config_file)] if config_file else []
    layers.append(env_layer(env))
    if overrides:
        layers.append(overrides_layer(overrides))

    merged: dict[str, Any] = {}
    ignored: list[str] = []
    for layer in layers:
        _merge(merged, _check_table(Config, layer.data, (), layer, ignored))
    if ignored:
        log.warning("ignoring unknown configuration keys: %s", "; ".join(ignored))
    return _settle(_build(Config, merged), merged)


def _check_table(
    cls: type[msgspec.Struct],
    data: Mapping[str, object],
    path: KeyPath,
    layer: Layer,
    ignored: list[str],
) -> dict[str, Any]:
    """Raw values of one table -> checked values by attribute name (nested for tables)."""
    specs = fields_by_key(cls)
    checked: dict[str, Any] = {}
    for key, value in data.items():
        key_path = (*path, key)
        spec = specs.get(key)
        if spec is None:
            ignored.append(f"{'.'.join(key_path)} ({layer.origin(key_path)})")
            continue
        if spec.table is not None:
            if not isinstance(value, Mapping):
                raise _error(key_path, "expected a table of options", layer)
            checked[spec.name] = _check_table(spec.table, value, key_path, layer, ignored)
            continue
        if isinstance(value, Mapping):
            raise _error(key_path, "expected a value, found a table", layer)
        try:
            if spec.kind is not None:
                checked[spec.name] = spec.kind.convert(value)
            else:
                checked[spec.name] = convert_plain(spec.base, value)
        except ValueError as exc:
            raise _error(key_path, str(exc), layer) from None
    return checked


def _error(key_path: KeyPath, reason: str, layer: Layer) -> ConfigError:
    key = ".".join(key_path)
    return ConfigError(f"invalid value for '{key}': {reason} ({layer.origin(key_path)})")


def _merge(into: dict[str, Any], values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(value, dict) and isinstance(into.get(name), dict):
            _merge(into[name], value)
        else:
            into[name] = value


def _build(cls: type[S], values: Mapping[str, Any]) -> S:
    kwargs: dict[str, Any] = {}
    for spec in fields_of(cls):
        if spec.name in values:
            value = values[spec.name]
            kwargs[spec.name] = _build(spec.table, value) if spec.table is not None else value
    return cls(**kwargs)


def _settle(config: Config, given: Mapping[str, Any]) -> Config:
    """Fill the values that depend on others, as the real server's derived values do."""
    invoker = config.worker.invoker
    network_limit = config.networking.message_size_limit
    if "message_size_limit" in given.get("worker", {}).get("invoker", {}):
        limit = min(invoker.message_size_limit, network_limit)
    else:
        limit = network_limit
    invoker_given = given.get("worker", {}).get("invoker", {})
    pem_file = invoker.request_identity_private_key_pem_file
    if "request_identity_private_key_pem_file" not in invoker_given:
        pem_file = config.request_identity_private_key_pem_file
    worker = msgspec.structs.replace(
        config.worker,
        invoker=msgspec.structs.replace(
            invoker,
            message_size_limit=limit,
            request_identity_private_key_pem_file=pem_file,
            # the real server clamps the leeway to at least a second
            request_identity_expiration_ms=max(invoker.request_identity_expiration_ms, 1000),
        ),
    )
    ingress_given = given.get("ingress", {})
    ingress = _settle_listener(
        config.ingress, config, ingress_given, INGRESS_PORT, "advertised_ingress_endpoint"
    )
    admin_given = given.get("admin", {})
    admin = _settle_listener(
        config.admin, config, admin_given, ADMIN_PORT, "advertised_admin_endpoint"
    )
    node_address = config.bind_address
    if "bind_address" not in given and (config.bind_ip or config.use_random_ports):
        port = 0 if config.use_random_ports else NODE_PORT
        node_address = format_bind_address(config.bind_ip or "0.0.0.0", port)
    return msgspec.structs.replace(
        config,
        worker=worker,
        ingress=ingress,
        admin=admin,
        bind_address=node_address,
        request_identity_private_key_pem_file=None,
    )


def _settle_listener(
    section: Listener,
    config: Config,
    given: Mapping[str, Any],
    default_port: int,
    endpoint_attr: str,
) -> Listener:
    """``bind-address`` if given, else ``bind-ip``/``bind-port``/``use-random-ports``
    (the IP and random-ports flag fall back to the top-level keys). The advertised URL
    is the deprecated ``advertised-*-endpoint``, else ``advertised-address``, else
    ``advertised-host`` with the bind port; None lets the server use 127.0.0.1."""
    bind_ip = section.bind_ip or config.bind_ip
    random_ports = section.use_random_ports
    if random_ports is None:
        random_ports = config.use_random_ports
    bind_address = section.bind_address
    if "bind_address" not in given and (bind_ip or section.bind_port is not None or random_ports):
        if section.bind_port is not None:
            port = section.bind_port
        else:
            port = 0 if random_ports else default_port
        bind_address = format_bind_address(bind_ip or "0.0.0.0", port)

    endpoint = getattr(section, endpoint_attr) or section.advertised_address
    advertised_host = section.advertised_host or config.advertised_host
    port = parse_bind_address(bind_address, default_port)[1]
    if endpoint is None and advertised_host and port:
        try:
            endpoint = normalize_advertised_address(f"{advertised_host}:{port}", default_port)
        except ValueError as exc:
            raise ConfigError(f"invalid value for 'advertised-host': {exc}") from None
    return msgspec.structs.replace(section, bind_address=bind_address, **{endpoint_attr: endpoint})
