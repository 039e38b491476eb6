"""The cluster's live nodes: one entry each in the engine's nodes bucket.

A node writes its entry (its fabric address, where other nodes send it commands) at
start and again every third of the lease time; the bucket's entries expire after a
lease time, like leases, so a node that died drops out of the table at about the time
its leases run out. A node that stops cleanly deletes its entry.
"""

from __future__ import annotations

import contextlib
import socket
from typing import TYPE_CHECKING

import msgspec
from nats.js import JetStreamContext
from nats.js.client import KV_PRE_TEMPLATE, KV_STREAM_TEMPLATE
from nats.js.errors import KeyNotFoundError, NotFoundError
from nats.js.kv import KV_DEL, KV_OP, KV_PURGE, KeyValue

if TYPE_CHECKING:
    from restate_server.config.model import ClusterOptions


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


def advertised_fabric_address(options: ClusterOptions, bound: str) -> str:
    """What other nodes connect to: the configured address, or the bound one with this
    host's name in place of a wildcard host."""
    if options.fabric_advertised_address:
        return str(options.fabric_advertised_address)
    host, port = bound.rsplit(":", 1)
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    return f"{host}:{port}"


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
