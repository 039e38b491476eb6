"""The cluster's live nodes: one entry each in the engine's nodes bucket.

A node writes its entry (its fabric address, where other nodes send it commands) at
start and again every third of the lease time; the bucket's entries expire after a
lease time, like leases, so a node that died drops out of the table at about the time
its leases run out. A node that stops cleanly deletes its entry.
"""

from __future__ import annotations

import contextlib

import msgspec
from nats.js.errors import KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue


class NodeInfo(msgspec.Struct, array_like=True):
    name: str
    fabric_address: str


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(NodeInfo)


def _key(name: str) -> str:
    # KV keys: letters, digits, "-", "_", "=", "." and "/"
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


async def announce(bucket: KeyValue, info: NodeInfo) -> None:
    await bucket.put(_key(info.name), _encoder.encode(info))


async def withdraw(bucket: KeyValue, name: str) -> None:
    with contextlib.suppress(KeyNotFoundError):
        await bucket.delete(_key(name))


async def live_nodes(bucket: KeyValue) -> dict[str, NodeInfo]:
    """Every node whose entry has not expired, by name."""
    nodes: dict[str, NodeInfo] = {}
    try:
        names = await bucket.keys()
    except NoKeysError:
        return nodes
    for key in names:
        try:
            entry = await bucket.get(key)
        except KeyNotFoundError:
            continue
        if entry.value:
            info = _decoder.decode(entry.value)
            nodes[info.name] = info
    return nodes
