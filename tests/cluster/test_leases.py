"""Partition leases in the engine's key-value bucket: one holder, expiry, take-over."""

from __future__ import annotations

import asyncio

from restate_server.cluster.engine import Engine
from restate_server.cluster.leases import PartitionLease, lease_holder

TTL_S = 2.0


async def test_one_holder_at_a_time_and_a_higher_epoch_after_expiry(engine: Engine) -> None:
    layout = await engine.ensure_layout(replicas=3, lease_ttl_s=TTL_S)
    a = PartitionLease(layout.leases, 5, "node-a", TTL_S, margin_s=0.5)
    b = PartitionLease(layout.leases, 5, "node-b", TTL_S, margin_s=0.5)
    assert await a.acquire()
    assert a.valid and a.epoch > 0
    assert not await b.acquire()
    holder = await lease_holder(layout.leases, 5)
    assert holder is not None and (holder.node, holder.epoch) == ("node-a", a.epoch)
    # a renews for longer than the lease time: b still cannot take it
    for _ in range(4):
        await asyncio.sleep(TTL_S / 3)
        assert await a.renew()
        assert not await b.acquire()
    # a stops renewing (paused, cut off): its own view runs out first ...
    first_epoch = a.epoch
    await asyncio.sleep(TTL_S - 0.5 + 0.05)
    assert not a.valid
    # ... and once the engine lets the entry expire, b takes over with a higher epoch
    for _ in range(100):
        if await b.acquire():
            break
        await asyncio.sleep(0.1)
    assert b.valid and b.epoch > first_epoch
    assert not await a.renew()  # the old holder cannot extend a lease it lost
    holder = await lease_holder(layout.leases, 5)
    assert holder is not None and holder.node == "node-b"


async def test_a_released_lease_is_free_at_once(engine: Engine) -> None:
    layout = await engine.ensure_layout(replicas=3, lease_ttl_s=TTL_S)
    a = PartitionLease(layout.leases, 9, "node-a", TTL_S)
    b = PartitionLease(layout.leases, 9, "node-b", TTL_S)
    assert await a.acquire()
    await a.release()
    assert not a.valid
    assert await b.acquire()
    assert b.epoch > 0


async def test_keep_renews_until_lost(engine: Engine) -> None:
    layout = await engine.ensure_layout(replicas=3, lease_ttl_s=TTL_S)
    a = PartitionLease(layout.leases, 11, "node-a", TTL_S, margin_s=0.5)
    assert await a.acquire()
    lost = asyncio.Event()
    keeper = asyncio.create_task(a.keep(lost.set))
    await asyncio.sleep(TTL_S * 2)
    assert a.valid and not lost.is_set()
    # somebody else takes the key over (as after an expiry a holder did not notice)
    await layout.leases.delete("p11")
    b = PartitionLease(layout.leases, 11, "node-b", TTL_S)
    assert await b.acquire()
    await asyncio.wait_for(lost.wait(), TTL_S * 2)
    assert not a.valid
    keeper.cancel()
