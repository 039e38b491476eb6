"""A partition starts: forget callers of the previous process, resume running invocations."""

from __future__ import annotations

from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.start import start
from restate_server.storage import keys
from restate_server.storage.records import INVOKED, IngressSink


def recover(ctx: ApplyContext, pk_start: int, pk_end: int) -> None:
    # only invocations that are not completed can be running or have callers waiting
    # (completion answers every caller), so the index is all there is to read
    start_key, end_key = _range(keys.ACTIVE_INVOCATION, pk_start, pk_end)
    for key, _ in ctx.txn.scan_range(start_key, end_key):
        invocation_id = key[1:]
        status = ctx.get_status(invocation_id)
        if status is None:
            continue
        live_sinks = [s for s in status.sinks if not isinstance(s, IngressSink)]
        changed = len(live_sinks) != len(status.sinks)
        status.sinks = live_sinks
        if status.status == INVOKED:
            start(ctx, invocation_id, status)
        elif changed:
            ctx.put_status(invocation_id, status)


def _range(tag: bytes, pk_start: int, pk_end: int) -> tuple[bytes, bytes]:
    start_key = tag + pk_start.to_bytes(8, "big")
    end_key = tag + pk_end.to_bytes(8, "big") if pk_end < 1 << 64 else keys.prefix_end(tag)
    return start_key, end_key
