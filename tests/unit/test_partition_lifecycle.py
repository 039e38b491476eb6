"""Invocation lifecycle in the partition state machine: no sockets, no clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from restate_server.partition.actions import (
    FailAttempt,
    IngressReply,
    IngressSendAck,
    InvokeAttempt,
    NotifyInvoker,
    RegisterTimer,
)
from restate_server.partition.commands import (
    AttachCaller,
    AttemptFailed,
    ProposeRunCompletion,
    Recover,
    TimerFired,
)
from restate_server.protocol import messages as pm
from restate_server.protocol.ids import workflow_invocation_id
from restate_server.storage.records import (
    COMPLETED,
    INBOXED,
    INVOKED,
    PAUSED,
    SCHEDULED,
    SUSPENDED,
    Failure,
    Target,
)
from tests.unit.partition_harness import GREETER, Harness, counter, of_type


@pytest.fixture
def h(tmp_path) -> Iterator[Harness]:
    harness = Harness(str(tmp_path / "db"))
    yield harness
    harness.close()


def test_invoke_starts_and_journals_input(h: Harness) -> None:
    invocation_id, actions = h.invoke(GREETER, b'"Alice"')
    [attempt] = of_type(actions, InvokeAttempt)
    assert attempt.invocation_id == invocation_id and attempt.epoch == 1
    status = h.status(invocation_id)
    assert status.status == INVOKED
    [entry] = h.journal(invocation_id)
    assert entry.type_id == pm.InputCommandMessage.TYPE
    decoded = pm.decode_message(entry.type_id, entry.body)
    assert decoded.value == b'"Alice"'
    assert decoded.headers[0].key == "x-restate-ingress-path"


def test_output_and_end_complete_and_answer_the_caller(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER, request_id=7)
    actions = h.end(invocation_id, b'"Hello"')
    [reply] = of_type(actions, IngressReply)
    assert reply.request_id == 7
    assert reply.outcome.value == b'"Hello"'
    assert reply.expires_at is None  # the first caller gets no idempotency-expires
    # no retention configured: nothing is kept
    assert not h.has_status(invocation_id)
    assert h.journal(invocation_id) == []


def test_terminal_failure_output_is_the_outcome(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER)
    epoch = h.status(invocation_id).epoch
    h.sdk(invocation_id, pm.OutputCommandMessage(failure=pm.Failure(code=418, message="boom")))
    from restate_server.partition.commands import AttemptEnded

    [reply] = of_type(h.apply(AttemptEnded(invocation_id, epoch)), IngressReply)
    assert reply.outcome.failure == Failure(418, "boom")


def test_retained_invocation_answers_repeats_with_expiry(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER, completion_retention_ms=86_400_000, idempotency_key="k")
    h.end(invocation_id, b"1")
    status = h.status(invocation_id)
    assert status.status == COMPLETED and status.expires_at == h.now + 86_400_000
    _, actions = h.invoke(GREETER, invocation_id=invocation_id, request_id=9, idempotency_key="k")
    [reply] = of_type(actions, IngressReply)
    assert reply.request_id == 9 and reply.outcome.value == b"1"
    assert reply.expires_at == status.expires_at
    assert not of_type(actions, InvokeAttempt)


def test_repeat_while_running_waits_for_the_same_result(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER, request_id=1, completion_retention_ms=1000)
    _, actions = h.invoke(GREETER, invocation_id=invocation_id, request_id=2)
    assert actions == []
    replies = of_type(h.end(invocation_id, b"42"), IngressReply)
    assert sorted(r.request_id for r in replies) == [1, 2]
    assert all(r.outcome.value == b"42" for r in replies)


def test_exclusive_handlers_queue_per_key_in_arrival_order(h: Harness) -> None:
    first, a1 = h.invoke(counter("k"))
    second, a2 = h.invoke(counter("k"))
    third, _ = h.invoke(counter("k"))
    _other, a4 = h.invoke(counter("other"))
    assert of_type(a1, InvokeAttempt) and of_type(a4, InvokeAttempt)
    assert not of_type(a2, InvokeAttempt)
    assert h.status(second).status == INBOXED
    actions = h.end(first)
    [started] = of_type(actions, InvokeAttempt)
    assert started.invocation_id == second
    assert h.status(third).status == INBOXED
    [started] = of_type(h.end(second), InvokeAttempt)
    assert started.invocation_id == third
    assert of_type(h.end(third), InvokeAttempt) == []
    # the key is free again
    _, actions = h.invoke(counter("k"))
    assert of_type(actions, InvokeAttempt)


def test_shared_handlers_do_not_wait_for_the_key(h: Harness) -> None:
    h.invoke(counter("k"))
    _, actions = h.invoke(counter("k", "get", "shared"))
    assert of_type(actions, InvokeAttempt)


def test_state_writes_are_visible_at_once(h: Harness) -> None:
    target = counter("k")
    invocation_id, _ = h.invoke(target)
    h.sdk(invocation_id, pm.SetStateCommandMessage(key=b"count", value=b"5"))
    assert h.state(target) == {b"count": b"5"}
    h.sdk(invocation_id, pm.SetStateCommandMessage(key=b"other", value=b"1"))
    h.sdk(invocation_id, pm.ClearStateCommandMessage(key=b"count"))
    assert h.state(target) == {b"other": b"1"}
    h.sdk(invocation_id, pm.ClearAllStateCommandMessage())
    assert h.state(target) == {}
    assert len(h.journal(invocation_id)) == 5


def test_lazy_state_reads_are_answered_immediately(h: Harness) -> None:
    target = counter("k")
    invocation_id, _ = h.invoke(target)
    h.sdk(invocation_id, pm.SetStateCommandMessage(key=b"count", value=b"3"))
    actions = h.sdk(
        invocation_id, pm.GetLazyStateCommandMessage(key=b"count", result_completion_id=1)
    )
    [notify] = of_type(actions, NotifyInvoker)
    assert notify.index == 3
    decoded = pm.decode_message(notify.type_id, notify.body)
    assert decoded.completion_id == 1 and decoded.value == b"3"
    actions = h.sdk(
        invocation_id, pm.GetLazyStateCommandMessage(key=b"missing", result_completion_id=2)
    )
    decoded = pm.decode_message(
        of_type(actions, NotifyInvoker)[0].type_id, of_type(actions, NotifyInvoker)[0].body
    )
    assert decoded.void and decoded.value is None
    actions = h.sdk(invocation_id, pm.GetLazyStateKeysCommandMessage(result_completion_id=3))
    [notify] = of_type(actions, NotifyInvoker)
    assert pm.decode_message(notify.type_id, notify.body).state_keys == [b"count"]


def test_state_writes_are_refused_outside_exclusive_handlers(h: Harness) -> None:
    invocation_id, _ = h.invoke(counter("k", "get", "shared"))
    old_epoch = h.status(invocation_id).epoch
    actions = h.sdk(invocation_id, pm.SetStateCommandMessage(key=b"a", value=b"1"))
    [fail] = of_type(actions, FailAttempt)
    assert fail.epoch == old_epoch + 1
    assert len(h.journal(invocation_id)) == 1
    # whatever the failed attempt still sends is ignored
    h.sdk(invocation_id, pm.OutputCommandMessage(value=b"1"), epoch=old_epoch)
    assert len(h.journal(invocation_id)) == 1


def test_run_proposal_becomes_a_notification_once(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER)
    h.sdk(invocation_id, pm.RunCommandMessage(result_completion_id=1, name="step1"))
    epoch = h.status(invocation_id).epoch
    actions = h.apply(ProposeRunCompletion(invocation_id, epoch, 1, b'"done"', None))
    [notify] = of_type(actions, NotifyInvoker)
    decoded = pm.decode_message(notify.type_id, notify.body)
    assert notify.type_id == pm.RunCompletionNotificationMessage.TYPE
    assert decoded.completion_id == 1 and decoded.value == b'"done"'
    assert notify.ack_completion_id is None
    assert h.apply(ProposeRunCompletion(invocation_id, epoch, 1, b'"again"', None)) == []
    assert len(h.journal(invocation_id)) == 3


def test_sleep_suspend_timer_resume(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER)
    wake = h.now + 5000
    actions = h.sdk(
        invocation_id, pm.SleepCommandMessage(wake_up_time=wake, result_completion_id=1)
    )
    [timer] = of_type(actions, RegisterTimer)
    assert timer.due == wake
    h.suspend(invocation_id, [1])
    assert h.status(invocation_id).status == SUSPENDED
    h.now = wake
    actions = h.apply(TimerFired(timer.key, timer.timer))
    [resume] = of_type(actions, InvokeAttempt)
    assert resume.epoch == 2
    status = h.status(invocation_id)
    assert status.status == INVOKED and 1 in status.completion_ids
    assert h.journal(invocation_id)[-1].type_id == pm.SleepCompletionNotificationMessage.TYPE
    # a timer fires once
    assert h.apply(TimerFired(timer.key, timer.timer)) == []


def test_suspension_with_notification_already_present_restarts(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER)
    h.sdk(invocation_id, pm.RunCommandMessage(result_completion_id=1))
    epoch = h.status(invocation_id).epoch
    h.apply(ProposeRunCompletion(invocation_id, epoch, 1, b"1", None))
    [restart] = of_type(h.suspend(invocation_id, [1]), InvokeAttempt)
    assert restart.epoch == epoch + 1
    assert h.status(invocation_id).status == INVOKED


def test_stale_epoch_is_ignored(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER)
    h.sdk(invocation_id, pm.OutputCommandMessage(value=b"1"), epoch=99)
    assert len(h.journal(invocation_id)) == 1


def test_one_way_send_is_acknowledged_and_runs(h: Harness) -> None:
    invocation_id, actions = h.invoke(GREETER, request_id=None, send_ack_request_id=5)
    [ack] = of_type(actions, IngressSendAck)
    assert ack.request_id == 5 and not ack.previously_accepted
    assert of_type(actions, InvokeAttempt)
    assert of_type(h.end(invocation_id), IngressReply) == []


def test_delayed_send_is_scheduled_by_a_durable_timer(h: Harness) -> None:
    due = h.now + 10_000
    invocation_id, actions = h.invoke(
        GREETER, request_id=None, send_ack_request_id=5, execution_time=due
    )
    [ack] = of_type(actions, IngressSendAck)
    assert ack.execution_time == due
    [timer] = of_type(actions, RegisterTimer)
    assert not of_type(actions, InvokeAttempt)
    assert h.status(invocation_id).status == SCHEDULED
    h.now = due
    assert of_type(h.apply(TimerFired(timer.key, timer.timer)), InvokeAttempt)


def test_second_workflow_run_is_refused(h: Harness) -> None:
    target = Target("Wf", "run", "w1", "workflow", "workflow")
    wf_id = workflow_invocation_id("Wf", "w1").to_bytes()
    h.invoke(target, invocation_id=wf_id, completion_retention_ms=1000)
    _, actions = h.invoke(target, invocation_id=wf_id, request_id=3)
    [reply] = of_type(actions, IngressReply)
    assert reply.outcome.failure == Failure(409, "the workflow method was already invoked")
    h.end(wf_id)
    _, actions = h.invoke(target, invocation_id=wf_id, request_id=4)
    assert of_type(actions, IngressReply)[0].outcome.failure.code == 409


def test_attach_and_output(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER, completion_retention_ms=1000)
    [reply] = of_type(h.apply(AttachCaller(invocation_id, 11, wait=False)), IngressReply)
    assert reply.from_ingress and reply.outcome.failure.code == 470
    assert h.apply(AttachCaller(invocation_id, 12, wait=True)) == []
    replies = {r.request_id: r for r in of_type(h.end(invocation_id, b"9"), IngressReply)}
    assert replies[12].outcome.value == b"9" and replies[12].expires_at is not None
    [reply] = of_type(h.apply(AttachCaller(invocation_id, 13, wait=False)), IngressReply)
    assert reply.outcome.value == b"9" and reply.target == GREETER
    [reply] = of_type(h.apply(AttachCaller(b"\x00" * 24, 14)), IngressReply)
    assert reply.outcome.failure.code == 404


def test_attempts_exhausted_pause_or_kill(h: Harness) -> None:
    paused, _ = h.invoke(GREETER)
    epoch = h.status(paused).epoch
    h.apply(AttemptFailed(paused, epoch, Failure(500, "boom"), pause=True))
    assert h.status(paused).status == PAUSED
    killed, _ = h.invoke(GREETER, request_id=3)
    epoch = h.status(killed).epoch
    actions = h.apply(AttemptFailed(killed, epoch, Failure(500, "boom"), pause=False))
    [reply] = of_type(actions, IngressReply)
    assert reply.outcome.failure == Failure(500, "boom")


def test_recover_restarts_running_invocations_and_drops_old_callers(h: Harness) -> None:
    running, _ = h.invoke(GREETER)
    suspended, _ = h.invoke(GREETER)
    h.sdk(suspended, pm.SleepCommandMessage(wake_up_time=h.now + 10, result_completion_id=1))
    h.suspend(suspended, [1])
    actions = h.apply(Recover())
    [attempt] = of_type(actions, InvokeAttempt)
    assert attempt.invocation_id == running and attempt.epoch == 2
    assert h.status(running).sinks == []
    assert h.status(suspended).status == SUSPENDED
