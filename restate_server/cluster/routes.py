"""Where each partition's commands go in a cluster: its processor on this node, the
link to the node that leads it, or a queue while nobody does.

The routers (ingress, admin operations, outbox hand-overs, the fabric's inbound
submits) see one ``ClusterRoute`` per partition and call ``submit`` as on a processor.
When the lease table says a partition's leader changed, the submits still unanswered
on the link to the old leader are taken back and sent to the new one, ahead of what
queued meanwhile: receivers make repeats harmless (idempotency and workflow keys, outbox
sequences), so a hand-over stays exactly once in effect.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from restate_server.cluster.membership import NodeInfo
from restate_server.partition.commands import Command, as_repeat
from restate_server.partition.waiters import Waiters
from restate_server.workers.link import PeerLink, request_id_of

log = logging.getLogger(__name__)

OnDone = Callable[[], None] | None


class ClusterRoute:
    __slots__ = ("_queue", "_target", "leader", "partition_id")

    def __init__(self, partition_id: int) -> None:
        self.partition_id = partition_id
        self._target: Any = None  # a processor, a _Remote, or None (queue)
        self._queue: list[tuple[Command, OnDone]] = []
        self.leader: str | None = None

    def submit(self, command: Command, on_durable: OnDone = None) -> None:
        target = self._target
        if target is None:
            self._queue.append((command, on_durable))
        else:
            target.submit(command, on_durable)

    def point_to(self, target: Any, leader: str | None, earlier: list[tuple[Command, OnDone]]):
        """Send from now on to ``target`` (None: hold); ``earlier`` (taken back from the
        old leader's link) goes first, then what queued."""
        held = earlier + self._queue
        self._queue = []
        self._target = target
        self.leader = leader
        for command, on_durable in held:
            self.submit(command, on_durable)


class _Local:
    """A processor of this node, as its route sees it. Commands someone waits for (an
    answer, or a callback once committed) are kept until then: if the partition is
    handed over first, they go to the next leader (``ClusterRoutes.hold``), as the
    links do with theirs. Commands of invocation attempts are not kept: a handed-over
    partition's attempts stop, and the next leader resumes from the journal."""

    __slots__ = ("_kept", "_keys", "_processor", "_sequence", "_waiting")

    def __init__(self, processor: Any, waiting: dict[int, _Local]) -> None:
        self._processor = processor
        self._kept: dict[int, tuple[Command, OnDone]] = {}
        self._keys: dict[int, int] = {}  # request id -> key in _kept
        self._sequence = 0
        self._waiting = waiting  # request id -> the _Local keeping its command (shared)

    def submit(self, command: Command, on_durable: OnDone = None) -> None:
        request_id = request_id_of(command)
        if request_id is None and on_durable is None:
            self._processor.submit(command)
            return
        self._sequence += 1
        key = self._sequence
        self._kept[key] = (command, on_durable)
        if request_id is not None:
            self._keys[request_id] = key
            self._waiting[request_id] = self
        if on_durable is None:
            self._processor.submit(command)
            return

        def committed() -> None:
            self._kept.pop(key, None)
            on_durable()

        self._processor.submit(command, committed)

    def answered(self, request_id: int) -> None:
        key = self._keys.pop(request_id, None)
        if key is not None:
            entry = self._kept.get(key)
            if entry is not None and entry[1] is None:
                del self._kept[key]

    def take_kept(self) -> list[tuple[Command, OnDone]]:
        kept = list(self._kept.values())
        for request_id in self._keys:
            self._waiting.pop(request_id, None)
        self._kept.clear()
        self._keys.clear()
        for command, _ in kept:
            as_repeat(command)  # the old processor may have taken it
        return kept


class _Remote:
    __slots__ = ("_link", "_partition_id")

    def __init__(self, link: PeerLink, partition_id: int) -> None:
        self._link = link
        self._partition_id = partition_id

    def submit(self, command: Command, on_durable: OnDone = None) -> None:
        self._link.submit(self._partition_id, command, on_durable)


class _FromPeer:
    """A route as the fabric's inbound side sees it. A command that came over a link
    may have a twin: the sender keeps it until answered and sends it again to the next
    leader if this node hands the partition over meanwhile. So an invocation that came
    this way is never taken as new without looking its id up."""

    __slots__ = ("_route",)

    def __init__(self, route: ClusterRoute) -> None:
        self._route = route

    def submit(self, command: Command, on_durable: OnDone = None) -> None:
        as_repeat(command)
        self._route.submit(command, on_durable)


class ClusterRoutes:
    def __init__(self, count: int, node_name: str, waiters: Waiters) -> None:
        self.node_name = node_name
        self._waiters = waiters
        self.routes = [ClusterRoute(p) for p in range(count)]
        self.links: dict[str, PeerLink] = {}
        self._local: dict[int, _Local] = {}
        self._waiting: dict[int, _Local] = {}
        self._closing: set[asyncio.Future[None]] = set()

    def inbound(self) -> dict[int, _FromPeer]:
        """What the fabric endpoint hands submits from other nodes to."""
        return {route.partition_id: _FromPeer(route) for route in self.routes}

    def set_local(self, partition_id: int, processor: Any) -> None:
        """This node leads ``partition_id`` now and its processor runs."""
        route = self.routes[partition_id]
        earlier = self._take_back(route)
        local = self._local[partition_id] = _Local(processor, self._waiting)
        route.point_to(local, self.node_name, earlier)

    def hold(self, partition_id: int) -> None:
        """This node is handing ``partition_id`` over: keep its commands until the lease
        table names the next leader."""
        local = self._local.pop(partition_id, None)
        kept = local.take_kept() if local is not None else []
        self.routes[partition_id].point_to(None, None, kept)

    def answered(self, request_id: int) -> None:
        """An answer left this node: the local processor need not keep its command."""
        local = self._waiting.pop(request_id, None)
        if local is not None:
            local.answered(request_id)

    def update(self, holders: dict[int, str | None], nodes: dict[str, NodeInfo]) -> None:
        """Follow the lease table: each partition not led here goes to its holder."""
        for partition_id, holder in holders.items():
            if partition_id in self._local:
                continue
            route = self.routes[partition_id]
            info = nodes.get(holder) if holder is not None else None
            if holder == self.node_name or info is None:
                # nobody (reachable) leads it, or this node is taking it: hold
                if route.leader is not None:
                    route.point_to(None, None, self._take_back(route))
                continue
            if route.leader == holder:
                continue
            link = self._link(info)
            route.point_to(_Remote(link, partition_id), holder, self._take_back(route))
            log.info("partition %s is led by %s", partition_id, holder)

    def _take_back(self, route: ClusterRoute) -> list[tuple[Command, OnDone]]:
        if route.leader is None or route.leader == self.node_name:
            return []
        link = self.links.get(route.leader)
        return link.take_unanswered(route.partition_id) if link is not None else []

    def _link(self, info: NodeInfo) -> PeerLink:
        link = self.links.get(info.name)
        if link is not None and link.address != info.fabric_address:
            # the node came back at another address: what waits on the old link is held
            # by the routes until they point to the new one
            del self.links[info.name]
            for route in self.routes:
                if route.leader == info.name and route.partition_id not in self._local:
                    route.point_to(None, None, link.take_unanswered(route.partition_id))
            closing = asyncio.ensure_future(link.close())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
            link = None
        if link is None:
            link = PeerLink(info.name, info.fabric_address, self._waiters)
            link.start()
            self.links[info.name] = link
        return link

    async def close(self) -> None:
        for link in self.links.values():
            await link.close()
