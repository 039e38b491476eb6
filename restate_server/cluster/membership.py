"""The cluster's live nodes: one entry each in the engine's nodes bucket.

A node writes its entry (its fabric address, where other nodes send it commands) at
start and again every third of the lease time; the bucket's entries expire after a
lease time, like leases, so a node that died drops out of the table at about the time
its leases run out. A node that stops cleanly deletes its entry.
"""

from __future__ import annotations

import contextlib
import socket
import urllib.parse
from typing import Any

import msgspec
from nats.js import JetStreamContext
from nats.js.client import KV_PRE_TEMPLATE, KV_STREAM_TEMPLATE
from nats.js.errors import KeyNotFoundError, NotFoundError
from nats.js.kv import KV_DEL, KV_OP, KV_PURGE, KeyValue


class NodeInfo(msgspec.Struct, array_like=True):
    name: str
    fabric_address: str
    # the registry revision this node routes with (an admin change waits for all)
    registry_revision: int = 0


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(NodeInfo)


def _key(name: str) -> str:
    # KV keys: letters, digits, "-", "_", "=", "." and "/"
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def advertised_fabric_address(config: Any, bound: str) -> str:
    """What other nodes connect to: ``[py.cluster] fabric-advertised-address``, else the
    bound port on the host of the node's ``advertised-address`` or ``advertised-host``
    (the real server's names), else on this host's name when bound to a wildcard."""
    options = config.py.cluster
    if options.fabric_advertised_address:
        return str(options.fabric_advertised_address)
    host, port = bound.rsplit(":", 1)
    named = _host_of(config.advertised_address) or config.advertised_host
    if named:
        host = named
    elif host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"{host}:{port}"


def _host_of(address: str | None) -> str | None:
    if not address:
        return None
    parsed = urllib.parse.urlsplit(address if "://" in address else f"//{address}")
    return parsed.hostname


async def announce(bucket: KeyValue, info: NodeInfo) -> None:
    await bucket.put(_key(info.name), _encoder.encode(info))


async def withdraw(bucket: KeyValue, name: str) -> None:
    with contextlib.suppress(KeyNotFoundError):
        await bucket.delete(_key(name))


async def live_nodes(js: JetStreamContext, bucket_name: str) -> dict[str, NodeInfo]:
    """Every node whose entry has not expired, by name.

    Read message by message from the bucket's stream (one entry per node: the bucket
    keeps one revision per key) rather than with the client's ``keys()``, which creates
    a consumer each time: consumer creation fails while an engine server is down."""
    stream = KV_STREAM_TEMPLATE.format(bucket=bucket_name)
    subjects = KV_PRE_TEMPLATE.format(bucket=bucket_name) + ">"
    nodes: dict[str, NodeInfo] = {}
    sequence = 1
    while True:
        try:
            message = await js.get_msg(stream, seq=sequence, subject=subjects, next=True)
        except NotFoundError:
            return nodes
        sequence = (message.seq or sequence) + 1
        operation = (message.headers or {}).get(KV_OP)
        if operation in (KV_DEL, KV_PURGE) or not message.data:
            continue
        info = _decoder.decode(message.data)
        nodes[info.name] = info
