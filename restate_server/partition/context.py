"""The view a rule gets of its partition while one command is applied."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from restate_server.partition.actions import Action, NotifyInvoker
from restate_server.storage import keys
from restate_server.storage.records import (
    INVOKED,
    InvocationStatus,
    decode_status,
    encode,
    encode_journal_entry,
)
from restate_server.storage.transaction import Transaction

if TYPE_CHECKING:
    from restate_server.partition.state_machine import SchemaView


class ApplyContext:
    """Storage access plus the action list of the batch being applied.

    Rules (``entries/`` and ``lifecycle/``) only talk to storage through this
    object, and only *record* actions here; the processor performs them once
    the batch is durable.
    """

    __slots__ = ("_counters", "actions", "now", "partition_id", "schema", "txn")

    def __init__(
        self,
        txn: Transaction,
        now: int,
        partition_id: int,
        counters: dict[str, int],
        schema: SchemaView | None,
    ) -> None:
        self.txn = txn
        self.now = now
        self.partition_id = partition_id
        self.actions: list[Action] = []
        self._counters = counters
        self.schema = schema

    # ---- invocation status

    def get_status(self, invocation_id: bytes) -> InvocationStatus | None:
        raw = self.txn.get(keys.invocation_status(invocation_id))
        return None if raw is None else decode_status(raw)

    def put_status(self, invocation_id: bytes, status: InvocationStatus) -> None:
        status.modified_at = self.now
        self.txn.put(keys.invocation_status(invocation_id), encode(status))

    def delete_status(self, invocation_id: bytes) -> None:
        self.txn.delete(keys.invocation_status(invocation_id))

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


Rule = Callable[[ApplyContext], None]
