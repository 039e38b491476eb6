"""Leadership of a partition: a lease in the engine's leases bucket.

The bucket's entries expire ``ttl_s`` after they were last written (JetStream 2.9 has
no per-key expiry, so the bucket's ``max_age`` is the lease time). A node takes a free
partition by creating its key (refused while somebody holds it) and keeps it by
updating the key with the revision it last wrote (refused once somebody else has
taken it). The revision of the create is the lease's epoch: it only grows, so a later
leader always has a higher epoch than an earlier one.

The holder counts its lease as valid until ``ttl_s - margin_s`` after it *sent* the
write that made or renewed it: the engine starts the expiry later, when it receives
the write, so the holder stops acting before anyone else can take over. That relies on
the two clocks' rates, not on their offsets. Leases decide who acts; the log's fence
(``partition_log``) is what makes writes of a deposed leader fail whatever its clock
says.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import msgspec
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from restate_server.cluster.engine import TRANSIENT
from restate_server.cluster.names import lease_key

log = logging.getLogger(__name__)

# after a renewal the engine did not take, the next try comes this soon
RETRY_RENEWAL_S = 0.25


class LeaseValue(msgspec.Struct, array_like=True):
    node: str
    epoch: int  # 0 in the create itself: the epoch is that create's revision


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(LeaseValue)


class PartitionLease:
    def __init__(
        self,
        bucket: KeyValue,
        partition_id: int,
        node: str,
        ttl_s: float,
        *,
        margin_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bucket = bucket
        self.partition_id = partition_id
        self.node = node
        self.ttl_s = ttl_s
        self.margin_s = margin_s if margin_s is not None else max(0.2 * ttl_s, 0.5)
        self._clock = clock
        self._key = lease_key(partition_id)
        self._revision = 0
        self.epoch = 0
        self._valid_until = 0.0
        self._renewed_now = False

    @property
    def valid(self) -> bool:
        return self.epoch > 0 and self._clock() < self._valid_until

    async def acquire(self) -> bool:
        """Take the partition if nobody holds it; True when this node now leads it."""
        sent = self._clock()
        try:
            revision = await self._bucket.create(
                self._key, _encoder.encode(LeaseValue(self.node, 0))
            )
        except KeyWrongLastSequenceError:
            return False
        self._revision = self.epoch = revision
        self._valid_until = sent + self.ttl_s - self.margin_s
        # the value names the epoch too, for whoever reads the lease table
        return await self.renew()

    async def renew(self) -> bool:
        """Extend the lease; False (and no longer valid) when it is lost or ran out."""
        self._renewed_now = False
        if not self.valid:
            self._lose()
            return False
        sent = self._clock()
        value = _encoder.encode(LeaseValue(self.node, self.epoch))
        try:
            self._revision = await self._bucket.update(self._key, value, last=self._revision)
        except KeyWrongLastSequenceError:
            self._lose()
            return False
        except TRANSIENT as exc:
            log.warning("lease of partition %s: renewal failed (%r)", self.partition_id, exc)
            return self.valid  # still held until it runs out; the next renewal may pass
        self._valid_until = sent + self.ttl_s - self.margin_s
        self._renewed_now = True
        return True

    async def release(self) -> None:
        """Give the partition up now (its records are in the log already)."""
        if self.epoch:
            # somebody else may hold it already: then there is nothing to give up
            with contextlib.suppress(KeyWrongLastSequenceError, KeyNotFoundError):
                await self._bucket.delete(self._key, last=self._revision)
        self._lose()

    def _lose(self) -> None:
        self.epoch = 0
        self._valid_until = 0.0

    async def keep(self, on_lost: Callable[[], None]) -> None:
        """Renew every third of the lease time until the lease is lost; then ``on_lost``.
        A renewal the engine did not take (it is electing a leader) is tried again
        soon, for as long as the lease is still valid."""
        pause = self.ttl_s / 3
        while True:
            await asyncio.sleep(pause)
            try:
                renewed = await self.renew()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # unforeseen: count it as a renewal that failed
                log.warning("lease of partition %s: renewal failed (%r)", self.partition_id, exc)
                renewed = False
            if not self.valid:
                on_lost()
                return
            pause = self.ttl_s / 3 if renewed and self._renewed_now else RETRY_RENEWAL_S


async def lease_holder(bucket: KeyValue, partition_id: int) -> LeaseValue | None:
    """Who leads ``partition_id`` now, as the bucket says (None: nobody)."""
    try:
        entry = await bucket.get(lease_key(partition_id))
    except KeyNotFoundError:
        return None
    if not entry.value:
        return None
    value = _decoder.decode(entry.value)
    if value.epoch == 0 and entry.revision is not None:
        value.epoch = entry.revision
    return value
