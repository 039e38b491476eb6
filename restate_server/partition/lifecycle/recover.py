"""A partition starts: forget callers of the previous process, resume running invocations."""

from __future__ import annotations

from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.start import start
from restate_server.storage import keys
from restate_server.storage.records import INVOKED, IngressSink, decode_status


def recover(ctx: ApplyContext, pk_start: int, pk_end: int) -> None:
    start_key = keys.invocation_status(pk_start.to_bytes(8, "big"))
    end_key = (
        keys.invocation_status(pk_end.to_bytes(8, "big"))
        if pk_end < 1 << 64
        else keys.prefix_end(keys.INVOCATION_STATUS)
    )
    for key, raw in ctx.txn.scan_range(start_key, end_key):
        status = decode_status(raw)
        invocation_id = key[1:]
        live_sinks = [s for s in status.sinks if not isinstance(s, IngressSink)]
        changed = len(live_sinks) != len(status.sinks)
        status.sinks = live_sinks
        if status.status == INVOKED:
            start(ctx, invocation_id, status)
        elif changed:
            ctx.put_status(invocation_id, status)
