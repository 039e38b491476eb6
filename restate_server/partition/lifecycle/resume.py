"""Resuming a suspended invocation once something it waits for is in its journal."""

from __future__ import annotations

from restate_server.partition.context import ApplyContext
from restate_server.partition.lifecycle.start import start
from restate_server.storage.records import SUSPENDED, InvocationStatus


def is_awaited_present(status: InvocationStatus) -> bool:
    """True when any completion/signal the SDK waits for has been journaled."""
    if status.waiting_completions:
        present = set(status.completion_ids)
        if any(c in present for c in status.waiting_completions):
            return True
    if status.waiting_signals:
        present = set(status.signal_ids)
        if any(s in present for s in status.waiting_signals):
            return True
    if status.waiting_named_signals:
        names = set(status.signal_names)
        if any(n in names for n in status.waiting_named_signals):
            return True
    return False


def resume_if_awaited(ctx: ApplyContext, invocation_id: bytes, status: InvocationStatus) -> None:
    if status.status == SUSPENDED and is_awaited_present(status):
        start(ctx, invocation_id, status)
