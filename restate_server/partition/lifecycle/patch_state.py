"""PatchState: replace the whole state of one key, in line with the key's invocations.

As in the real server, a mutation of a key whose lock is held waits in the key's inbox
behind the holder and every invocation already queued; it runs when the lock reaches
it (``complete.release_key``). The version is compared when the mutation is applied, not
when it arrives: a mutation computed from a state that changed meanwhile is dropped.
The admin caller is answered once the command is committed, applied or queued.
"""

from __future__ import annotations

from restate_server.partition.actions import CommandReply
from restate_server.partition.commands import PatchState
from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.key_lock import read_lock, write_lock
from restate_server.partition.state_version import state_version
from restate_server.storage import keys
from restate_server.storage.records import QueuedStateMutation, encode


def patch_state(ctx: ApplyContext, command: PatchState) -> None:
    pk, service, key = command.partition_key, command.service, command.key
    lock_key = keys.key_lock(pk, service, key)
    lock = read_lock(ctx, lock_key)
    if lock is None:
        replace_state(ctx, pk, service, key, command.version, command.state)
    else:
        sequence = ctx.next_sequence("inbox")
        queued = QueuedStateMutation(command.version, command.state)
        ctx.txn.put(keys.inbox_entry(pk, service, key, sequence), encode(queued))
        write_lock(ctx, lock_key, lock._replace(queued=lock.queued + 1))
    if command.request_id is not None:
        ctx.emit(CommandReply(command.request_id, "accepted"))


def replace_state(
    ctx: ApplyContext,
    partition_key: int,
    service: str,
    key: str,
    version: str | None,
    state: list[tuple[bytes, bytes]],
) -> bool:
    """Make ``state`` the key's whole state, unless ``version`` no longer matches."""
    prefix = keys.state_prefix(partition_key, service, key)
    if version is not None:
        current = [(k[len(prefix) :], v) for k, v in ctx.txn.scan_prefix(prefix)]
        if state_version(current) != version:
            return False
    ctx.txn.delete_prefix(prefix)
    for state_key, value in state:
        ctx.txn.put(prefix + state_key, value)
    return True
