"""Removing a queued invocation from its key's inbox."""

from __future__ import annotations

from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.key_lock import lock_key, read_lock, write_lock
from restate_server.storage import keys
from restate_server.storage.records import InvocationStatus


def remove_from_inbox(ctx: ApplyContext, invocation_id: bytes, status: InvocationStatus) -> None:
    target = status.target
    if status.inbox_sequence is None or target.key is None:
        return
    pk = int.from_bytes(invocation_id[:8], "big")
    ctx.txn.delete(keys.inbox_entry(pk, target.service, target.key, status.inbox_sequence))
    status.inbox_sequence = None
    key = lock_key(invocation_id, target)
    lock = read_lock(ctx, key)
    if lock is not None and lock.queued > 0:
        write_lock(ctx, key, lock._replace(queued=lock.queued - 1))
