"""The partition state machine: applies one command at a time, records actions.

No I/O, no clock: storage goes through the transaction in the context, time
comes in as ``now``. A reader finds the rule for any journal command under
``entries/`` and for any lifecycle transition under ``lifecycle/``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol

from restate_server.partition.actions import Action
from restate_server.partition.commands import (
    AppendNotification,
    AttachCaller,
    AttachInvocation,
    AttemptEnded,
    AttemptFailed,
    AttemptSuspended,
    CancelInvocation,
    Command,
    CompleteInvocation,
    Deliver,
    Invoke,
    JournalCommand,
    KillInvocation,
    PatchState,
    PauseInvocation,
    ProposeRunCompletion,
    PurgeInvocation,
    PurgeJournal,
    Recover,
    ResolveAwakeable,
    RestartAsNewInvocation,
    ResumeInvocation,
    TimerFired,
    TruncateOutbox,
)
from restate_server.partition.context import ApplyContext
from restate_server.partition.entries import (
    attach_invocation as attach_entry,
)
from restate_server.partition.entries import (
    call,
    clear_all_state,
    clear_state,
    complete_awakeable,
    get_eager_state,
    get_lazy_state,
    get_lazy_state_keys,
    output,
    promise,
    run,
    send_signal,
    set_state,
    sleep,
)
from restate_server.partition.entries.preconditions import reject
from restate_server.partition.lifecycle.attach import attach_caller, attach_invocation
from restate_server.partition.lifecycle.awakeable import resolve_awakeable
from restate_server.partition.lifecycle.cancel import cancel
from restate_server.partition.lifecycle.end import end
from restate_server.partition.lifecycle.fail import attempts_exhausted, complete_with
from restate_server.partition.lifecycle.invoke import invoke
from restate_server.partition.lifecycle.kill import kill
from restate_server.partition.lifecycle.notify import append_notification
from restate_server.partition.lifecycle.patch_state import patch_state
from restate_server.partition.lifecycle.pause import pause, resume
from restate_server.partition.lifecycle.purge import purge
from restate_server.partition.lifecycle.purge_journal import purge_journal
from restate_server.partition.lifecycle.recover import recover
from restate_server.partition.lifecycle.restart_as_new import restart_as_new
from restate_server.partition.lifecycle.start import apply_pin
from restate_server.partition.lifecycle.suspend import suspend
from restate_server.partition.lifecycle.timers import timer_fired
from restate_server.partition.table import PartitionTable
from restate_server.protocol import messages as pm
from restate_server.storage import keys
from restate_server.storage.records import INVOKED, InvocationStatus
from restate_server.storage.transaction import Transaction

log = logging.getLogger(__name__)

EntryRule = Callable[[ApplyContext, InvocationStatus, JournalCommand], None]

ENTRY_RULES: dict[int, EntryRule] = {
    pm.OutputCommandMessage.TYPE: output.apply,
    pm.SetStateCommandMessage.TYPE: set_state.apply,
    pm.ClearStateCommandMessage.TYPE: clear_state.apply,
    pm.ClearAllStateCommandMessage.TYPE: clear_all_state.apply,
    pm.GetEagerStateCommandMessage.TYPE: get_eager_state.apply,
    pm.GetEagerStateKeysCommandMessage.TYPE: get_eager_state.apply,
    pm.GetLazyStateCommandMessage.TYPE: get_lazy_state.apply,
    pm.GetLazyStateKeysCommandMessage.TYPE: get_lazy_state_keys.apply,
    pm.SleepCommandMessage.TYPE: sleep.apply,
    pm.RunCommandMessage.TYPE: run.apply,
    pm.CallCommandMessage.TYPE: call.apply,
    pm.OneWayCallCommandMessage.TYPE: call.apply,
    pm.SendSignalCommandMessage.TYPE: send_signal.apply,
    pm.CompleteAwakeableCommandMessage.TYPE: complete_awakeable.apply,
    pm.GetPromiseCommandMessage.TYPE: promise.get,
    pm.PeekPromiseCommandMessage.TYPE: promise.peek,
    pm.CompletePromiseCommandMessage.TYPE: promise.complete,
    pm.AttachInvocationCommandMessage.TYPE: attach_entry.apply,
    pm.GetInvocationOutputCommandMessage.TYPE: attach_entry.apply,
}


class SchemaView(Protocol):
    """What the state machine may ask of the schema (to resolve calls and deployments)."""

    def get_service(self, name: str) -> Any: ...

    def resolve_invocation_target(self, service: str, handler: str) -> Any: ...

    def get_deployment(self, deployment_id: str) -> Any: ...

    def latest_deployment_for(self, service: str) -> Any: ...


class StateMachine:
    def __init__(
        self,
        partition_id: int,
        table: PartitionTable,
        schema: SchemaView | None = None,
    ) -> None:
        self.partition_id = partition_id
        self.table = table
        self.pk_range = table.range_of(partition_id)
        self.schema = schema
        self.counters: dict[str, int] = {}

    def load(self, txn: Transaction) -> None:
        """Read the partition's counters back from storage."""
        prefix = keys.fsm_variable(self.partition_id, "")
        for key, value in txn.scan_prefix(prefix):
            self.counters[key[len(prefix) :].decode()] = keys.decode_u64(value)

    def apply(self, txn: Transaction, command: Command, now: int) -> list[Action]:
        ctx = ApplyContext(txn, now, self)
        self.dispatch(ctx, command)
        return ctx.actions

    def dispatch(self, ctx: ApplyContext, command: Command) -> None:
        if isinstance(command, JournalCommand):
            self._journal_command(ctx, command)
        elif isinstance(command, Invoke):
            invoke(ctx, command.request)
        elif isinstance(command, ProposeRunCompletion):
            run.propose_completion(ctx, command)
        elif isinstance(command, AttemptEnded):
            end(ctx, command)
        elif isinstance(command, AttemptSuspended):
            suspend(ctx, command)
        elif isinstance(command, TimerFired):
            timer_fired(ctx, command)
        elif isinstance(command, AttachCaller):
            attach_caller(ctx, command)
        elif isinstance(command, AttemptFailed):
            attempts_exhausted(ctx, command)
        elif isinstance(command, CompleteInvocation):
            complete_with(ctx, command)
        elif isinstance(command, AppendNotification):
            append_notification(ctx, command)
        elif isinstance(command, Deliver):
            self._deliver(ctx, command)
        elif isinstance(command, TruncateOutbox):
            ctx.txn.delete(keys.outbox(self.partition_id, command.sequence))
        elif isinstance(command, AttachInvocation):
            attach_invocation(ctx, command)
        elif isinstance(command, CancelInvocation):
            cancel(ctx, command)
        elif isinstance(command, KillInvocation):
            kill(ctx, command)
        elif isinstance(command, PurgeInvocation):
            purge(ctx, command)
        elif isinstance(command, PauseInvocation):
            pause(ctx, command)
        elif isinstance(command, ResumeInvocation):
            resume(ctx, command)
        elif isinstance(command, ResolveAwakeable):
            resolve_awakeable(ctx, command)
        elif isinstance(command, PatchState):
            patch_state(ctx, command)
        elif isinstance(command, PurgeJournal):
            purge_journal(ctx, command)
        elif isinstance(command, RestartAsNewInvocation):
            restart_as_new(ctx, command)
        elif isinstance(command, Recover):
            recover(ctx, *self.pk_range)
        else:  # pragma: no cover - exhaustive over Command
            raise TypeError(f"unknown command {type(command).__name__}")

    def _journal_command(self, ctx: ApplyContext, command: JournalCommand) -> None:
        status = ctx.get_status(command.invocation_id)
        if status is None or status.status != INVOKED or status.epoch != command.epoch:
            return  # from an attempt that no longer counts
        apply_pin(status, command.pin)
        rule = ENTRY_RULES.get(command.type_id)
        if rule is None:
            name = pm.MESSAGE_NAMES.get(command.type_id, hex(command.type_id))
            reject(ctx, command.invocation_id, status, f"{name} is not supported", code=573)
        else:
            rule(ctx, status, command)
        ctx.put_status(command.invocation_id, status)

    def _deliver(self, ctx: ApplyContext, command: Deliver) -> None:
        """Apply a command from another partition's outbox exactly once."""
        dedup_key = keys.dedup(self.partition_id, command.source_partition.to_bytes(2, "big"))
        raw = ctx.txn.get(dedup_key)
        if raw is not None and keys.decode_u64(raw) >= command.sequence:
            return
        ctx.txn.put(dedup_key, keys.encode_u64(command.sequence))
        self.dispatch(ctx, command.command)
