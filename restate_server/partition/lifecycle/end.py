"""The SDK ended the attempt with End: the last Output is the invocation's result."""

from __future__ import annotations

from restate_server.partition.commands import AttemptEnded
from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.complete import complete
from restate_server.partition.lifecycle.start import apply_pin
from restate_server.storage.records import INVOKED, Outcome

_EMPTY = Outcome(value=b"")


def end(ctx: ApplyContext, command: AttemptEnded) -> None:
    status = ctx.get_status(command.invocation_id)
    if status is None or status.status != INVOKED or status.epoch != command.epoch:
        return
    apply_pin(status, command.pin)
    complete(ctx, command.invocation_id, status, status.output or _EMPTY)
