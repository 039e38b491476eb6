"""Invocations talking to each other: calls, sends, awakeables, promises, cancel, kill,
purge, and delivery across partitions through the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from restate_server.partition.actions import (
    AbortAttempt,
    Action,
    CommandReply,
    FailAttempt,
    IngressReply,
    InvokeAttempt,
    NotifyInvoker,
    Shuffle,
)
from restate_server.partition.commands import (
    AttemptEnded,
    CancelInvocation,
    Command,
    Deliver,
    JournalCommand,
    KillInvocation,
    PurgeInvocation,
    ResolveAwakeable,
    TruncateOutbox,
)
from restate_server.partition.state_machine import StateMachine
from restate_server.partition.table import PartitionTable
from restate_server.protocol import messages as pm
from restate_server.protocol.ids import InvocationId, awakeable_id, workflow_invocation_id
from restate_server.storage import keys
from restate_server.storage.db import Store
from restate_server.storage.records import COMPLETED, Failure, Target, decode_status
from restate_server.storage.transaction import Transaction
from tests.unit.fake_schema import FakeSchema
from tests.unit.partition_harness import GREETER, Harness, counter, of_type


@pytest.fixture
def h(tmp_path) -> Iterator[Harness]:
    harness = Harness(str(tmp_path / "db"), FakeSchema())
    yield harness
    harness.close()


def _call(service: str, handler: str, key: str = "", **kw: Any) -> pm.CallCommandMessage:
    return pm.CallCommandMessage(
        service_name=service,
        handler_name=handler,
        parameter=b'"p"',
        key=key,
        invocation_id_notification_idx=1,
        result_completion_id=2,
        **kw,
    )


def _notifications(h: Harness, invocation_id: bytes) -> list[Any]:
    return [
        pm.decode_message(e.type_id, e.body)
        for e in h.journal(invocation_id)
        if e.type_id >= 0x8000
    ]


def test_call_creates_callee_and_its_result_completes_the_caller(h: Harness) -> None:
    caller, _ = h.invoke(GREETER)
    actions = h.sdk(caller, _call("Counter", "add", "k1"))
    [started] = of_type(actions, InvokeAttempt)
    callee = started.invocation_id
    assert started.target == counter("k1")
    [id_note] = _notifications(h, caller)
    assert id_note.completion_id == 1
    assert id_note.invocation_id == str(InvocationId.from_bytes(callee))
    callee_status = h.status(callee)
    assert callee_status.invoked_by == "service" and callee_status.invoked_by_id == caller
    h.suspend(caller, [2])
    actions = h.end(callee, b"7")
    [resumed] = of_type(actions, InvokeAttempt)
    assert resumed.invocation_id == caller
    result = _notifications(h, caller)[-1]
    assert result.completion_id == 2 and result.value == b"7"


def test_call_to_unknown_service_fails_the_attempt(h: Harness) -> None:
    caller, _ = h.invoke(GREETER)
    actions = h.sdk(caller, _call("Nope", "x"))
    assert of_type(actions, FailAttempt)
    assert len(h.journal(caller)) == 1


def test_one_way_call_with_delay_is_scheduled(h: Harness) -> None:
    caller, _ = h.invoke(GREETER)
    message = pm.OneWayCallCommandMessage(
        service_name="Greeter",
        handler_name="greet",
        parameter=b"1",
        invoke_time=h.now + 500,
        invocation_id_notification_idx=1,
    )
    actions = h.sdk(caller, message)
    assert not of_type(actions, InvokeAttempt)
    [note] = _notifications(h, caller)
    callee = InvocationId.from_str(note.invocation_id).to_bytes()
    assert h.status(callee).status == "scheduled"


def test_awakeable_resolved_from_outside_resumes_the_waiter(h: Harness) -> None:
    waiter, _ = h.invoke(GREETER)
    h.suspend(waiter, [], [1, 17])
    awk = awakeable_id(InvocationId.from_bytes(waiter), 17)
    assert awk.startswith("sign_1")
    actions = h.apply(ResolveAwakeable(waiter, 17, value=b'"v"', request_id=3))
    assert of_type(actions, CommandReply)[0].result == "accepted"
    assert of_type(actions, InvokeAttempt)
    signal = _notifications(h, waiter)[-1]
    assert signal.signal_id == 17 and signal.value == b'"v"'
    # a second resolution is accepted and ignored
    actions = h.apply(ResolveAwakeable(waiter, 17, value=b'"again"', request_id=4))
    assert of_type(actions, CommandReply)[0].result == "accepted"
    assert len(_notifications(h, waiter)) == 1


def test_awakeable_completed_by_another_handler(h: Harness) -> None:
    waiter, _ = h.invoke(GREETER)
    h.suspend(waiter, [], [1, 17])
    resolver, _ = h.invoke(GREETER)
    awk = awakeable_id(InvocationId.from_bytes(waiter), 17)
    actions = h.sdk(resolver, pm.CompleteAwakeableCommandMessage(awakeable_id=awk, value=b"1"))
    [resumed] = of_type(actions, InvokeAttempt)
    assert resumed.invocation_id == waiter


def test_resolving_own_awakeable_keeps_the_journal_consistent(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER)
    awk = awakeable_id(InvocationId.from_bytes(invocation_id), 17)
    actions = h.sdk(invocation_id, pm.CompleteAwakeableCommandMessage(awakeable_id=awk, value=b"1"))
    [notify] = of_type(actions, NotifyInvoker)
    assert notify.index == 2
    assert h.status(invocation_id).journal_length == 3
    assert [e.type_id for e in h.journal(invocation_id)] == [
        pm.InputCommandMessage.TYPE,
        pm.CompleteAwakeableCommandMessage.TYPE,
        pm.SignalNotificationMessage.TYPE,
    ]


def test_workflow_promise_between_run_and_shared_handler(h: Harness) -> None:
    run_target = Target("Wf", "run", "w", "workflow", "workflow")
    run_id = workflow_invocation_id("Wf", "w").to_bytes()
    h.invoke(run_target, invocation_id=run_id)
    actions = h.sdk(run_id, pm.GetPromiseCommandMessage(key="p", result_completion_id=1))
    assert not of_type(actions, NotifyInvoker)
    h.suspend(run_id, [1])
    shared, _ = h.invoke(Target("Wf", "signal", "w", "workflow", "shared"))
    peek = h.sdk(shared, pm.PeekPromiseCommandMessage(key="p", result_completion_id=1))
    assert pm.decode_message(
        of_type(peek, NotifyInvoker)[0].type_id, of_type(peek, NotifyInvoker)[0].body
    ).void
    actions = h.sdk(
        shared,
        pm.CompletePromiseCommandMessage(key="p", completion_value=b'"ok"', result_completion_id=2),
    )
    assert any(a.invocation_id == run_id for a in of_type(actions, InvokeAttempt))
    assert _notifications(h, run_id)[-1].value == b'"ok"'
    again = h.sdk(
        shared,
        pm.CompletePromiseCommandMessage(key="p", completion_value=b'"2"', result_completion_id=3),
    )
    note = pm.decode_message(
        of_type(again, NotifyInvoker)[0].type_id, of_type(again, NotifyInvoker)[0].body
    )
    assert note.failure.code == 409


def test_promises_only_in_workflows(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER)
    actions = h.sdk(invocation_id, pm.GetPromiseCommandMessage(key="p", result_completion_id=1))
    assert of_type(actions, FailAttempt)


def test_cancel_running_delivers_signal_and_resumes(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER)
    h.suspend(invocation_id, [5])
    actions = h.apply(CancelInvocation(invocation_id, request_id=1))
    assert of_type(actions, CommandReply)[0].result == "accepted"
    assert of_type(actions, InvokeAttempt)
    assert _notifications(h, invocation_id)[-1].signal_id == 1


def test_cancel_inboxed_completes_at_once(h: Harness) -> None:
    h.invoke(counter("k"))
    queued, _ = h.invoke(counter("k"), request_id=9, completion_retention_ms=1000)
    actions = h.apply(CancelInvocation(queued, request_id=1))
    [reply] = of_type(actions, IngressReply)
    assert reply.request_id == 9 and reply.outcome.failure == Failure(409, "canceled")
    assert h.status(queued).status == COMPLETED


def test_kill_ends_now_and_kills_pending_children(h: Harness) -> None:
    parent, _ = h.invoke(GREETER, request_id=5)
    actions = h.sdk(parent, _call("Counter", "add", "k"))
    child = of_type(actions, InvokeAttempt)[0].invocation_id
    actions = h.apply(KillInvocation(parent, request_id=1))
    aborted = {a.invocation_id for a in of_type(actions, AbortAttempt)}
    assert aborted == {parent, child}
    replies = {r.request_id: r for r in of_type(actions, IngressReply)}
    assert replies[5].outcome.failure == Failure(409, "killed")
    assert of_type(actions, CommandReply)[0].result == "done"
    actions = h.apply(KillInvocation(parent, request_id=2))
    assert of_type(actions, CommandReply)[0].result in ("completed", "not_found")


def test_purge_only_completed(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER, completion_retention_ms=10_000)
    assert (
        of_type(h.apply(PurgeInvocation(invocation_id, 1)), CommandReply)[0].result
        == "not_completed"
    )
    h.end(invocation_id)
    assert (
        h.apply(PurgeInvocation(invocation_id, 2, only_if_expired=True))[0].result == "not_expired"
    )
    assert of_type(h.apply(PurgeInvocation(invocation_id, 3)), CommandReply)[0].result == "done"
    assert not h.has_status(invocation_id)
    assert (
        of_type(h.apply(PurgeInvocation(invocation_id, 4)), CommandReply)[0].result == "not_found"
    )


class TwoPartitions:
    """Two partitions over one store; shuffles are delivered like the server does."""

    def __init__(self, path: str) -> None:
        self.store = Store(path, sync_writes=False)
        table = PartitionTable(2)
        self.machines = [StateMachine(p, table, FakeSchema()) for p in range(2)]
        self.table = table
        self.now = 1_700_000_000_000

    def apply(self, partition: int, command: Command) -> list[Action]:
        txn = Transaction(self.store)
        actions = self.machines[partition].apply(txn, command, self.now)
        self.store.write(txn.writes)
        performed: list[Action] = []
        for action in actions:
            if isinstance(action, Shuffle):
                performed.extend(
                    self.apply(
                        action.target_partition,
                        Deliver(action.source_partition, action.sequence, action.command),
                    )
                )
                self.apply(action.source_partition, TruncateOutbox(action.sequence))
            else:
                performed.append(action)
        return performed

    def partition_of(self, invocation_id: bytes) -> int:
        return self.table.partition_of(int.from_bytes(invocation_id[:8], "big"))


def test_calls_cross_partitions_through_the_outbox(tmp_path) -> None:
    two = TwoPartitions(str(tmp_path / "db"))
    caller = (1).to_bytes(8, "big") + bytes(16)  # partition 0
    from restate_server.partition.commands import InvocationRequest, Invoke

    two.apply(0, Invoke(InvocationRequest(invocation_id=caller, target=GREETER, argument=b"")))
    epoch = decode_status(two.store.get(keys.invocation_status(caller))).epoch
    # a key whose partition key lands in partition 1
    key = next(k for k in (f"k{i}" for i in range(100)) if two.partition_of(_pk_bytes(k)) == 1)
    call = _call("Counter", "add", key)
    actions = two.apply(0, JournalCommand(caller, epoch, call.TYPE, pm.encode_message(call), call))
    [started] = of_type(actions, InvokeAttempt)
    callee = started.invocation_id
    assert two.partition_of(callee) == 1
    assert list(two.store.scan_prefix(keys.outbox_prefix(0))) == []  # truncated
    # re-delivering the same outbox entry is a no-op
    from restate_server.partition.commands import InvocationRequest as _IR  # noqa: F401

    output = pm.OutputCommandMessage(value=b"3")
    callee_epoch = decode_status(two.store.get(keys.invocation_status(callee))).epoch
    two.apply(
        1, JournalCommand(callee, callee_epoch, output.TYPE, pm.encode_message(output), output)
    )
    two.apply(1, AttemptEnded(callee, callee_epoch))
    caller_status = decode_status(two.store.get(keys.invocation_status(caller)))
    assert 2 in caller_status.completion_ids
    two.store.close()


def _pk_bytes(key: str) -> bytes:
    from restate_server.protocol.ids import partition_key_for_key

    return partition_key_for_key("Counter", key).to_bytes(8, "big")


def test_send_signal_by_name_and_cancel_signal(h: Harness) -> None:
    target, _ = h.invoke(GREETER)
    h.suspend(target, [], [1])
    sender, _ = h.invoke(GREETER)
    target_str = str(InvocationId.from_bytes(target))
    h.sdk(
        sender,
        pm.SendSignalCommandMessage(target_invocation_id=target_str, name="go", value=b'"y"'),
    )
    note = _notifications(h, target)[-1]
    assert note.signal_name == "go" and note.value == b'"y"'
    # index 1 is cancellation: it resumes the suspended target with the cancel signal
    actions = h.sdk(
        sender, pm.SendSignalCommandMessage(target_invocation_id=target_str, idx=1, void=True)
    )
    assert any(a.invocation_id == target for a in of_type(actions, InvokeAttempt))
    assert _notifications(h, target)[-1].signal_id == 1


def test_invalid_signal_target_fails_the_attempt(h: Harness) -> None:
    sender, _ = h.invoke(GREETER)
    actions = h.sdk(sender, pm.SendSignalCommandMessage(target_invocation_id="inv_bad", idx=17))
    assert of_type(actions, FailAttempt)


def test_attach_and_get_output_from_another_invocation(h: Harness) -> None:
    target, _ = h.invoke(GREETER, completion_retention_ms=10_000)
    caller, _ = h.invoke(GREETER)
    target_str = str(InvocationId.from_bytes(target))
    h.sdk(
        caller,
        pm.GetInvocationOutputCommandMessage(invocation_id=target_str, result_completion_id=1),
    )
    assert _notifications(h, caller)[-1].void
    h.sdk(
        caller, pm.AttachInvocationCommandMessage(invocation_id=target_str, result_completion_id=2)
    )
    h.suspend(caller, [2])
    actions = h.end(target, b'"done"')
    assert any(a.invocation_id == caller for a in of_type(actions, InvokeAttempt))
    attach = _notifications(h, caller)[-1]
    assert attach.completion_id == 2 and attach.value == b'"done"'
    unknown = str(InvocationId(5, bytes(16)))
    h.sdk(caller, pm.AttachInvocationCommandMessage(invocation_id=unknown, result_completion_id=3))
    assert _notifications(h, caller)[-1].failure.code == 404
