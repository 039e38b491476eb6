"""The partition processor: the one writer of a partition's data.

Commands are queued, applied in order in groups, and each group's writes are
handed to the committer as one batch. Only when a batch is durable are its
actions performed (answers, invoker attempts, timers), strictly in order.
While a batch is being synced, the next group is already applied on top of it
(the transaction reads through in-flight writes), which is what lets one fsync
carry many requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from restate_server.logs.fields import FIELDS, INVOCATION_ID
from restate_server.metrics.histogram import clock_ns
from restate_server.partition.actions import Action, FailAttempt, RegisterTimer, Shuffle
from restate_server.partition.commands import (
    AppendNotification,
    AttachInvocation,
    AttemptEnded,
    AttemptSuspended,
    CancelInvocation,
    Command,
    Invoke,
    JournalCommand,
    KillInvocation,
    OutboxCommand,
    ProposeRunCompletion,
    Recover,
    TimerFired,
    decode_outbox_command,
)
from restate_server.partition.state_machine import StateMachine
from restate_server.partition.timer_service import TimerService
from restate_server.protocol.ids import invocation_id_str
from restate_server.storage import keys
from restate_server.storage.committer import Committer
from restate_server.storage.db import Store
from restate_server.storage.records import decode_timer
from restate_server.storage.transaction import Transaction, Writes

if TYPE_CHECKING:
    from restate_server.metrics.partition import PartitionMetrics

log = logging.getLogger(__name__)

ActionSink = Callable[[list[Action]], None]
Done = Callable[[], None] | None

MAX_GROUP = 512
MAX_IN_FLIGHT = 4


def _command_fields(command: Command) -> dict[str, Any]:
    invocation_id = getattr(command, "invocation_id", None)
    if not isinstance(invocation_id, bytes):
        return {}
    return {FIELDS: {INVOCATION_ID: invocation_id_str(invocation_id)}}


class _Pending:
    """One applied group waiting for its writes to become durable."""

    __slots__ = ("actions", "callbacks", "durable", "writes")

    def __init__(self, writes: Writes, actions: list[Action], callbacks: list[Callable[[], None]]):
        self.writes = writes
        self.actions = actions
        self.callbacks = callbacks
        self.durable = not writes


class PartitionProcessor:
    def __init__(
        self,
        partition_id: int,
        pk_range: tuple[int, int],
        store: Store,
        committer: Committer,
        state_machine: StateMachine,
        perform: ActionSink,
        clock: Callable[[], float] = time.time,
        metrics: PartitionMetrics | None = None,
    ) -> None:
        self.partition_id = partition_id
        self.pk_range = pk_range
        self._store = store
        self._committer = committer
        self._sm = state_machine
        self._perform = perform
        self._clock = clock
        self._queue: deque[tuple[Command, Done]] = deque()
        self._pending: deque[_Pending] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        # a drain is queued on the loop, or waits for room among the in-flight groups
        self._drain_scheduled = False
        self._waiting_for_room = False
        self._stopped = False
        self.timers: TimerService | None = None
        self.applied_commands = 0
        self.metrics = metrics  # None: metrics are off

    @property
    def queued_commands(self) -> int:
        return len(self._queue)

    @property
    def timers_armed(self) -> int:
        return 0 if self.timers is None else len(self.timers)

    # ---- lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.timers = TimerService(loop, self._timer_due)
        self._sm.load(Transaction(self._store))
        for key, raw in self._store.scan_prefix(keys.timer_prefix(self.partition_id)):
            self.timers.register(key, keys.timer_due_of(key), decode_timer(raw))
        self._loop = loop
        if self.metrics is not None:
            self.metrics.starts += 1
        self.submit(Recover())

    def outbox_backlog(self) -> list[Shuffle]:
        """Outbox entries not yet confirmed by their target (re-sent after a restart)."""
        backlog = []
        prefix = keys.outbox_prefix(self.partition_id)
        for key, raw in self._store.scan_prefix(prefix):
            sequence = keys.decode_u64(key[len(prefix) :])
            command = decode_outbox_command(raw)
            target = self._sm.table.partition_of(_partition_key_of(command))
            backlog.append(Shuffle(self.partition_id, target, sequence, command))
        return backlog

    async def quiesce(self, timeout_s: float) -> bool:
        """Wait until every queued command is applied and committed (shutdown, before
        ``stop``); False if that takes longer than ``timeout_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._queue or self._pending:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def stop(self) -> None:
        self._stopped = True
        if self.timers is not None:
            self.timers.close()

    # ---- input

    def submit(self, command: Command, on_durable: Done = None) -> None:
        """Queue a command; ``on_durable`` runs after its effects are committed."""
        self._queue.append((command, on_durable))
        self._schedule_drain()

    async def submit_and_wait(self, command: Command) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.submit(command, lambda: future.done() or future.set_result(None))
        await future

    def _timer_due(self, key: bytes, timer: Any) -> None:
        if self.metrics is not None:
            self.metrics.timers_fired += 1
        self.submit(TimerFired(key, timer))

    # ---- the loop

    # Draining is a plain loop callback, not a task: one group per turn of the loop,
    # so I/O and commit callbacks run between groups, without the cost of waking a
    # task and an event for every group.

    def _schedule_drain(self) -> None:
        if self._drain_scheduled or self._waiting_for_room or self._loop is None:
            return
        self._drain_scheduled = True
        self._loop.call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        if self._stopped or not self._queue:
            return
        if len(self._pending) >= MAX_IN_FLIGHT:
            self._waiting_for_room = True  # _flush drains again once a group is durable
            return
        self._apply_group()
        if self._queue:
            self._schedule_drain()

    def _apply_group(self) -> None:
        queue = self._queue
        now = int(self._clock() * 1000)
        txn = Transaction(self._store, [p.writes for p in self._pending if not p.durable])
        actions: list[Action] = []
        callbacks: list[Callable[[], None]] = []
        count = 0
        metrics = self.metrics
        # one clock reading per command: each one's time runs from the previous reading
        if metrics is not None:
            durations_of = metrics.durations_by_class.get
            last_ns = clock_ns()
        while queue and count < MAX_GROUP:
            command, done = queue.popleft()
            count += 1
            txn.savepoint()
            try:
                actions.extend(self._sm.apply(txn, command, now))
                txn.release()
            except Exception:
                txn.rollback()
                # the command's name only: its fields hold user data (bodies, state, keys)
                log.exception(
                    "partition %s failed to apply a %s command",
                    self.partition_id,
                    type(command).__name__,
                    extra=_command_fields(command),
                )
                if isinstance(command, _ATTEMPT_COMMANDS):  # retried, not left waiting
                    actions.append(
                        FailAttempt(command.invocation_id, command.epoch, 500, "internal error")
                    )
            if metrics is not None:
                durations = durations_of(command.__class__)
                if durations is None:
                    durations = metrics.durations_for(command)
                now_ns = clock_ns()
                durations.append(now_ns - last_ns)
                last_ns = now_ns
            if done is not None:
                callbacks.append(done)
        self.applied_commands += count
        pending = _Pending(txn.writes, actions, callbacks)
        self._pending.append(pending)
        if pending.writes:
            self._committer.submit(pending.writes, lambda: self._durable(pending))
        else:
            self._flush()

    def _durable(self, pending: _Pending) -> None:
        pending.durable = True
        self._flush()

    def _flush(self) -> None:
        """Perform the actions of every durable group at the head, in order."""
        pending_groups = self._pending
        while pending_groups and pending_groups[0].durable:
            group = pending_groups.popleft()
            self._perform_actions(group.actions)
            for callback in group.callbacks:
                try:
                    callback()
                except Exception:
                    log.exception("commit callback failed")
        if self._waiting_for_room and len(pending_groups) < MAX_IN_FLIGHT:
            self._waiting_for_room = False
            self._schedule_drain()

    def _perform_actions(self, actions: list[Action]) -> None:
        if not actions:
            return
        timers = self.timers
        rest: list[Action] = []
        for action in actions:
            if isinstance(action, RegisterTimer) and timers is not None:
                timers.register(action.key, action.due, action.timer)
            else:
                rest.append(action)
        if rest:
            try:
                self._perform(rest)
            except Exception:
                log.exception("performing actions failed")


# what a running attempt sends: one that cannot be applied fails that attempt
_ATTEMPT_COMMANDS = (JournalCommand, ProposeRunCompletion, AttemptEnded, AttemptSuspended)


def _partition_key_of(command: OutboxCommand) -> int:
    if isinstance(command, Invoke):
        raw = command.request.invocation_id
    elif isinstance(command, AttachInvocation):
        raw = command.target_id
    elif isinstance(command, (AppendNotification, CancelInvocation, KillInvocation)):
        raw = command.invocation_id
    else:  # pragma: no cover - exhaustive
        raise TypeError(type(command).__name__)
    return int.from_bytes(raw[:8], "big")
