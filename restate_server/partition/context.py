"""The view a rule gets of its partition while one command is applied."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from restate_server.partition.actions import Action, NotifyInvoker, Shuffle
from restate_server.partition.commands import encode_outbox_command
from restate_server.storage import keys
from restate_server.storage.records import (
    COMPLETED,
    INVOKED,
    InvocationStatus,
    decode_status,
    encode,
    encode_journal_entry,
)
from restate_server.storage.transaction import Transaction

if TYPE_CHECKING:
    from restate_server.partition.commands import OutboxCommand
    from restate_server.partition.state_machine import SchemaView, StateMachine

_UNKNOWN = "?"  # not a status: the index entry was neither read nor written


class ApplyContext:
    """Storage access plus the action list of the batch being applied.

    Rules (``entries/`` and ``lifecycle/``) only talk to storage through this
    object, and only *record* actions here; the processor performs them once
    the batch is durable.
    """

    __slots__ = (
        "_counters",
        "_indexed",
        "_machine",
        "_statuses",
        "actions",
        "now",
        "partition_id",
        "schema",
        "txn",
    )

    def __init__(
        self,
        txn: Transaction,
        now: int,
        machine: StateMachine,
    ) -> None:
        self.txn = txn
        self.now = now
        self.partition_id = machine.partition_id
        self.actions: list[Action] = []
        self._counters = machine.counters
        self._machine = machine
        self.schema: SchemaView | None = machine.schema
        # One object per invocation while a command is applied, so that rules that
        # reach the same invocation twice (e.g. resolving one's own awakeable) share it.
        self._statuses: dict[bytes, InvocationStatus | None] = {}
        # each invocation's status as the active-invocation index holds it (None: not
        # there), for those read or written by this command
        self._indexed: dict[bytes, str | None] = {}

    # ---- invocation status

    def get_status(self, invocation_id: bytes) -> InvocationStatus | None:
        statuses = self._statuses
        if invocation_id in statuses:
            return statuses[invocation_id]
        raw = self.txn.get(keys.invocation_status(invocation_id))
        status = None if raw is None else decode_status(raw)
        statuses[invocation_id] = status
        # the rules change status objects in place: remember what the index says now
        self._indexed[invocation_id] = (
            None if status is None or status.status == COMPLETED else status.status
        )
        return status

    def put_status(self, invocation_id: bytes, status: InvocationStatus) -> None:
        status.modified_at = self.now
        self._statuses[invocation_id] = status
        self.txn.put(keys.invocation_status(invocation_id), encode(status))
        indexed = None if status.status == COMPLETED else status.status
        # the index changes with the status only (not on every journal entry)
        if self._indexed.get(invocation_id, _UNKNOWN) != indexed:
            self._indexed[invocation_id] = indexed
            if indexed is None:
                self.txn.delete(keys.active_invocation(invocation_id))
            else:
                self.txn.put(keys.active_invocation(invocation_id), indexed.encode())

    def delete_status(self, invocation_id: bytes) -> None:
        self._statuses[invocation_id] = None
        self.txn.delete(keys.invocation_status(invocation_id))
        if self._indexed.get(invocation_id, _UNKNOWN) is not None:
            self.txn.delete(keys.active_invocation(invocation_id))
        self._indexed[invocation_id] = None

    # ---- journal

    def append_entry(
        self, invocation_id: bytes, status: InvocationStatus, type_id: int, body: bytes
    ) -> int:
        """Append an entry; the caller saves ``status`` afterwards."""
        index = status.journal_length
        self.txn.put(
            keys.journal_entry(invocation_id, index),
            encode_journal_entry(type_id, body, self.now),
        )
        status.journal_length = index + 1
        status.journal_modified_at = self.now
        return index

    def append_notification(
        self,
        invocation_id: bytes,
        status: InvocationStatus,
        type_id: int,
        body: bytes,
        *,
        completion_id: int | None = None,
        signal_id: int | None = None,
        signal_name: str | None = None,
        ack_completion_id: int | None = None,
    ) -> int:
        """Append a notification, remember its id, and push it to a running attempt."""
        index = self.append_entry(invocation_id, status, type_id, body)
        if completion_id is not None:
            status.completion_ids.append(completion_id)
        if signal_id is not None:
            status.signal_ids.append(signal_id)
        if signal_name is not None:
            status.signal_names.append(signal_name)
        if status.status == INVOKED:
            self.actions.append(
                NotifyInvoker(invocation_id, status.epoch, index, type_id, body, ack_completion_id)
            )
        return index

    def delete_journal(self, invocation_id: bytes, length: int) -> None:
        for index in range(length):
            self.txn.delete(keys.journal_entry(invocation_id, index))

    # ---- per-partition counters (inbox order, timer keys)

    def next_sequence(self, name: str) -> int:
        value = self._counters.get(name, 0) + 1
        self._counters[name] = value
        self.txn.put(keys.fsm_variable(self.partition_id, name), keys.encode_u64(value))
        return value

    def emit(self, action: Action) -> None:
        self.actions.append(action)

    # ---- talking to other invocations

    def deliver(self, partition_key: int, command: OutboxCommand) -> None:
        """Apply ``command`` at the partition owning ``partition_key``.

        Locally it is applied at once, in this same transaction. Across
        partitions it is written to the outbox in this batch and shuffled to the
        target after commit; the target deduplicates re-deliveries.
        """
        target = self._machine.table.partition_of(partition_key)
        if target == self.partition_id:
            self._machine.dispatch(self, command)
            return
        sequence = self.next_sequence("outbox")
        self.txn.put(keys.outbox(self.partition_id, sequence), encode_outbox_command(command))
        self.emit(Shuffle(self.partition_id, target, sequence, command))

    def deliver_to_invocation(self, invocation_id: bytes, command: OutboxCommand) -> None:
        self.deliver(int.from_bytes(invocation_id[:8], "big"), command)


Rule = Callable[[ApplyContext], None]
