"""Drive the partition state machine without sockets: commands in, storage and actions out."""

from __future__ import annotations

from typing import Any

from restate_server.partition.actions import Action
from restate_server.partition.commands import (
    AttemptEnded,
    AttemptSuspended,
    Command,
    InvocationRequest,
    Invoke,
    JournalCommand,
)
from restate_server.partition.state_machine import StateMachine
from restate_server.partition.table import PartitionTable
from restate_server.protocol import messages as pm
from restate_server.protocol.ids import InvocationId, new_invocation_id, partition_key_for_key
from restate_server.storage import keys
from restate_server.storage.db import Store
from restate_server.storage.records import (
    IngressSink,
    InvocationStatus,
    JournalEntry,
    Target,
    decode_journal_entry,
    decode_status,
)
from restate_server.storage.transaction import Transaction

GREETER = Target("Greeter", "greet", None, "service", None)


def counter(key: str, handler: str = "add", kind: str = "exclusive") -> Target:
    return Target("Counter", handler, key, "virtual_object", kind)


class Harness:
    """A single partition owning the whole key space, on a real RocksDB in a temp dir."""

    def __init__(self, path: str, schema: Any = None) -> None:
        self.store = Store(path, sync_writes=False)
        self.machine = StateMachine(0, PartitionTable(1), schema)
        self.machine.load(Transaction(self.store))
        self.now = 1_700_000_000_000

    def apply(self, *commands: Command) -> list[Action]:
        """Apply commands as one group and commit, like the processor does."""
        txn = Transaction(self.store)
        actions: list[Action] = []
        for command in commands:
            actions.extend(self.machine.apply(txn, command, self.now))
        self.store.write(txn.writes)
        return actions

    # ---- building commands

    def new_id(self, target: Target) -> bytes:
        pk = partition_key_for_key(target.service, target.key) if target.key is not None else 42
        self.now += 1
        return new_invocation_id(pk, self.now).to_bytes()

    def invoke(
        self, target: Target, argument: bytes = b'"x"', request_id: int | None = 1, **kwargs: Any
    ) -> tuple[bytes, list[Action]]:
        invocation_id = kwargs.pop("invocation_id", None) or self.new_id(target)
        request = InvocationRequest(
            invocation_id=invocation_id,
            target=target,
            argument=argument,
            headers=[("x-restate-ingress-path", "/x")],
            sink=IngressSink(request_id) if request_id is not None else None,
            **kwargs,
        )
        return invocation_id, self.apply(Invoke(request))

    def sdk(self, invocation_id: bytes, message: Any, epoch: int | None = None) -> list[Action]:
        epoch = self.status(invocation_id).epoch if epoch is None else epoch
        body = pm.encode_message(message)
        return self.apply(JournalCommand(invocation_id, epoch, message.TYPE, body, message))

    def end(self, invocation_id: bytes, value: bytes = b'"ok"') -> list[Action]:
        epoch = self.status(invocation_id).epoch
        output = pm.OutputCommandMessage(value=value)
        return self.apply(
            JournalCommand(invocation_id, epoch, output.TYPE, pm.encode_message(output), output),
            AttemptEnded(invocation_id, epoch),
        )

    def suspend(
        self, invocation_id: bytes, completions: list[int], signals: list[int] | None = None
    ) -> list[Action]:
        epoch = self.status(invocation_id).epoch
        return self.apply(AttemptSuspended(invocation_id, epoch, completions, signals or [1], []))

    # ---- reading storage

    def status(self, invocation_id: bytes) -> InvocationStatus:
        raw = self.store.get(keys.invocation_status(invocation_id))
        assert raw is not None, "no status stored"
        return decode_status(raw)

    def has_status(self, invocation_id: bytes) -> bool:
        return self.store.get(keys.invocation_status(invocation_id)) is not None

    def journal(self, invocation_id: bytes) -> list[JournalEntry]:
        return [
            decode_journal_entry(v)
            for _, v in self.store.scan_prefix(keys.journal_prefix(invocation_id))
        ]

    def state(self, target: Target) -> dict[bytes, bytes]:
        assert target.key is not None
        prefix = keys.state_prefix(
            partition_key_for_key(target.service, target.key), target.service, target.key
        )
        return {k[len(prefix) :]: v for k, v in self.store.scan_prefix(prefix)}

    def close(self) -> None:
        self.store.close()


def of_type(actions: list[Action], kind: type) -> list[Any]:
    return [a for a in actions if isinstance(a, kind)]


def id_str(raw: bytes) -> str:
    return str(InvocationId.from_bytes(raw))
