"""RestartAsNewInvocation (and PurgeJournal) in the partition state machine.

The rules and their order follow restate-server 1.7.12 (its RPC handler, then its state
machine); the journals used here have the shapes the TS SDK 1.17 writes (verified with
``sys_journal`` on the real server): Greeter ``[Input, Output]``, Steps
``[Input, Run, RunCompletion, Run, RunCompletion, Run, RunCompletion, Output]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from restate_server.partition.actions import CommandReply, InvokeAttempt
from restate_server.partition.commands import (
    AttachCaller,
    AttemptEnded,
    JournalCommand,
    KillInvocation,
    ProposeRunCompletion,
    PurgeJournal,
    RestartAsNewInvocation,
)
from restate_server.protocol import messages as pm
from restate_server.protocol.ids import new_invocation_id, workflow_invocation_id
from restate_server.storage.records import (
    COMPLETED,
    INBOXED,
    INVOKED,
    SCHEDULED,
    Outcome,
    Target,
)
from tests.unit.fake_schema import DEFAULT_DEPLOYMENT, FakeDeployment, FakeSchema
from tests.unit.partition_harness import GREETER, Harness, counter, of_type

DAY = 86_400_000
RETAINED = {"completion_retention_ms": DAY, "journal_retention_ms": DAY}
STEPS = Target("Steps", "threeSteps", None, "service", None)
OTHER_DEPLOYMENT = "dp_11XHoawrCiHDBBmqmlqaw3Q"


@pytest.fixture
def schema() -> FakeSchema:
    schema = FakeSchema()
    schema.add("Steps", "Service", {"threeSteps": None})
    return schema


@pytest.fixture
def h(tmp_path, schema: FakeSchema) -> Iterator[Harness]:
    harness = Harness(str(tmp_path / "db"), schema)
    yield harness
    harness.close()


def sdk(h: Harness, invocation_id: bytes, message: Any, protocol: int = 6) -> None:
    """A command from the attempt, pinning the deployment and protocol like a first attempt."""
    epoch = h.status(invocation_id).epoch
    body = pm.encode_message(message)
    pin = (DEFAULT_DEPLOYMENT, protocol)
    h.apply(JournalCommand(invocation_id, epoch, message.TYPE, body, message, pin=pin))


def run(h: Harness, invocation_id: bytes, completion_id: int, value: bytes = b"") -> None:
    sdk(h, invocation_id, pm.RunCommandMessage(result_completion_id=completion_id))
    epoch = h.status(invocation_id).epoch
    h.apply(ProposeRunCompletion(invocation_id, epoch, completion_id, value, None))


def finish(h: Harness, invocation_id: bytes, value: bytes, protocol: int = 6) -> None:
    sdk(h, invocation_id, pm.OutputCommandMessage(value=value), protocol)
    h.apply(AttemptEnded(invocation_id, h.status(invocation_id).epoch))


def completed_greet(h: Harness, protocol: int = 6, **retention: int) -> bytes:
    invocation_id, _ = h.invoke(GREETER, b'"Alice"', **(retention or RETAINED))
    finish(h, invocation_id, b'"Hello, Alice!"', protocol)
    assert h.status(invocation_id).status == COMPLETED
    return invocation_id


def completed_steps(h: Harness) -> bytes:
    invocation_id, _ = h.invoke(STEPS, b'"t1"', **RETAINED)
    for completion_id in (1, 2, 3):
        run(h, invocation_id, completion_id)
    h.end(invocation_id, b'"done t1"')
    return invocation_id


def restart(
    h: Harness, invocation_id: bytes, copy_prefix_up_to: int = 0, deployment: str = "latest"
) -> tuple[bytes, CommandReply, list[Any]]:
    new_id = new_invocation_id(int.from_bytes(invocation_id[:8], "big"), h.now).to_bytes()
    command = RestartAsNewInvocation(invocation_id, new_id, copy_prefix_up_to, deployment, 5)
    actions = h.apply(command)
    [reply] = of_type(actions, CommandReply)
    return new_id, reply, actions


def refused(h: Harness, invocation_id: bytes, **kwargs: Any) -> str:
    new_id, reply, actions = restart(h, invocation_id, **kwargs)
    assert reply.invocation_id is None and not of_type(actions, InvokeAttempt)
    assert not h.has_status(new_id)
    return reply.result


def types(h: Harness, invocation_id: bytes) -> list[int]:
    return [entry.type_id for entry in h.journal(invocation_id)]


# ---------------------------------------------------------------- from the beginning


def test_restart_runs_the_same_request_again(h: Harness) -> None:
    old = completed_greet(h)
    new_id, reply, actions = restart(h, old)
    assert reply == CommandReply(5, "done", invocation_id=new_id)
    assert new_id[:8] == old[:8]

    status, before = h.status(new_id), h.status(old)
    assert status.status == INVOKED and status.target == GREETER
    assert (status.invoked_by, status.restarted_from) == ("restart_as_new", old)
    assert status.idempotency_key is None and status.sinks == []
    assert status.completion_retention_ms == DAY and status.journal_retention_ms == DAY
    assert status.random_seed == before.random_seed
    assert (status.deployment_id, status.protocol_version) == (DEFAULT_DEPLOYMENT, 6)
    # only the input: same value, same headers
    [entry] = h.journal(new_id)
    assert entry.type_id == pm.InputCommandMessage.TYPE
    assert entry.body == h.journal(old)[0].body
    [attempt] = of_type(actions, InvokeAttempt)
    assert attempt.invocation_id == new_id and attempt.epoch == 1
    assert attempt.journal is not None and [e.body for e in attempt.journal] == [entry.body]
    # the original stays as it was
    assert h.status(old).status == COMPLETED and len(h.journal(old)) == 2


def test_the_restarted_invocation_is_attachable_once_done(h: Harness) -> None:
    old = completed_greet(h)
    new_id, _, _ = restart(h, old)
    finish(h, new_id, b'"Hello again"')
    actions = h.apply(AttachCaller(new_id, 77))
    [answer] = [a for a in actions if getattr(a, "request_id", None) == 77]
    assert answer.outcome.value == b'"Hello again"'


def test_a_restarted_object_call_waits_for_its_key(h: Harness) -> None:
    target = counter("k1")
    old, _ = h.invoke(target, b"5", **RETAINED)
    h.end(old, b"5")
    holder, _ = h.invoke(target)
    new_id, reply, actions = restart(h, old)
    assert reply.result == "done" and not of_type(actions, InvokeAttempt)
    assert h.status(new_id).status == INBOXED
    actions = h.end(holder)
    assert [a.invocation_id for a in of_type(actions, InvokeAttempt)] == [new_id]


# ---------------------------------------------------------------- from a prefix


@pytest.mark.parametrize(
    ("copy_prefix_up_to", "expected"),
    [
        # the Run at 1 brings its completion (index 2) along
        (1, ["Input", "Run", "Run"]),
        (2, ["Input", "Run", "Run"]),
        (3, ["Input", "Run", "Run", "Run", "Run"]),
        (6, ["Input", "Run", "Run", "Run", "Run", "Run", "Run"]),
        (7, ["Input", "Run", "Run", "Run", "Run", "Run", "Run", "Output"]),
    ],
)
def test_prefix_keeps_entries_and_their_completions(
    h: Harness, copy_prefix_up_to: int, expected: list[str]
) -> None:
    old = completed_steps(h)
    assert len(h.journal(old)) == 8
    new_id, reply, actions = restart(h, old, copy_prefix_up_to)
    assert reply.result == "done"
    assert [pm.SHORT_NAMES[t] for t in types(h, new_id)] == expected
    status = h.status(new_id)
    assert status.journal_length == len(expected)
    completions = sorted(status.completion_ids)
    assert completions == list(range(1, (len(expected) - 1) // 2 + 1))
    [attempt] = of_type(actions, InvokeAttempt)
    assert attempt.journal is not None and len(attempt.journal) == len(expected)


def test_a_copied_output_is_the_result(h: Harness) -> None:
    old = completed_steps(h)
    new_id, _, _ = restart(h, old, 7)
    # the SDK replays the whole journal and just ends
    h.apply(AttemptEnded(new_id, h.status(new_id).epoch))
    status = h.status(new_id)
    assert status.status == COMPLETED and status.output == Outcome(value=b'"done t1"')


def test_prefix_with_a_command_never_completed_is_refused(h: Harness) -> None:
    invocation_id, _ = h.invoke(STEPS, b'"t1"', **RETAINED)
    run(h, invocation_id, 1)
    sdk(h, invocation_id, pm.RunCommandMessage(result_completion_id=2))
    h.apply(KillInvocation(invocation_id))
    assert refused(h, invocation_id, copy_prefix_up_to=3) == "journal_copy_range_invalid"
    # the prefix before that command is fine
    assert restart(h, invocation_id, 2)[1].result == "done"


def test_prefix_past_the_journal(h: Harness) -> None:
    old = completed_greet(h)
    assert restart(h, old, 1)[1].result == "done"
    assert refused(h, old, copy_prefix_up_to=2) == "journal_copy_range_invalid"
    assert refused(h, old, copy_prefix_up_to=5) == "journal_copy_range_invalid"
    # u32::MAX wraps the real server's range check to nothing: "out of range" instead
    assert refused(h, old, copy_prefix_up_to=0xFFFF_FFFF) == "journal_index_out_of_range"


@pytest.mark.parametrize("protocol", [5])
def test_prefix_needs_protocol_6(h: Harness, protocol: int) -> None:
    old = completed_greet(h, protocol)
    assert refused(h, old, copy_prefix_up_to=1) == "unsupported"
    assert restart(h, old)[1].result == "done"


# ---------------------------------------------------------------- deployments


def test_latest_deployment_replaces_the_pin(h: Harness, schema: FakeSchema) -> None:
    old = completed_greet(h)
    schema.deployments[OTHER_DEPLOYMENT] = FakeDeployment(OTHER_DEPLOYMENT)
    schema.latest["Greeter"] = OTHER_DEPLOYMENT
    new_id, _, _ = restart(h, old)
    assert (h.status(new_id).deployment_id, h.status(new_id).protocol_version) == (
        OTHER_DEPLOYMENT,
        6,
    )
    kept, _, _ = restart(h, old, deployment="keep")
    assert h.status(kept).deployment_id == DEFAULT_DEPLOYMENT
    chosen, _, _ = restart(h, old, deployment=OTHER_DEPLOYMENT)
    assert h.status(chosen).deployment_id == OTHER_DEPLOYMENT


def test_unknown_deployment(h: Harness, schema: FakeSchema) -> None:
    old = completed_greet(h)
    assert refused(h, old, deployment=OTHER_DEPLOYMENT) == "deployment_not_found"
    del schema.services["Greeter"]
    assert refused(h, old) == "deployment_not_found"


def test_deployment_must_speak_the_pinned_protocol(h: Harness, schema: FakeSchema) -> None:
    old = completed_greet(h)
    schema.deployments[OTHER_DEPLOYMENT] = FakeDeployment(OTHER_DEPLOYMENT, 7, 7)
    new_id, reply, _ = restart(h, old, deployment=OTHER_DEPLOYMENT)
    assert reply.result == "incompatible_deployment" and not h.has_status(new_id)
    assert reply.details == {
        "pinned_protocol_version": 6,
        "deployment_id": OTHER_DEPLOYMENT,
        "min_protocol_version": 7,
        "max_protocol_version": 7,
    }


# ---------------------------------------------------------------- refusals


def test_unknown_invocation(h: Harness) -> None:
    assert refused(h, new_invocation_id(42).to_bytes()) == "not_found"


def test_running_inboxed_and_scheduled_invocations(h: Harness) -> None:
    running, _ = h.invoke(counter("k1"), **RETAINED)
    inboxed, _ = h.invoke(counter("k1"), **RETAINED)
    scheduled, _ = h.invoke(GREETER, execution_time=h.now + DAY, **RETAINED)
    assert h.status(scheduled).status == SCHEDULED
    assert refused(h, running) == "still_running"
    assert refused(h, inboxed) == "not_started"
    assert refused(h, scheduled) == "not_started"


def test_workflows_are_not_restarted(h: Harness) -> None:
    target = Target("Wf", "run", "w1", "workflow", "workflow")
    invocation_id = workflow_invocation_id("Wf", "w1").to_bytes()
    h.invoke(target, invocation_id=invocation_id, **RETAINED)
    h.end(invocation_id)
    assert refused(h, invocation_id) == "unsupported"


def test_purged_journal_means_no_input(h: Harness) -> None:
    old = completed_greet(h)
    assert of_type(h.apply(PurgeJournal(old, 3)), CommandReply) == [CommandReply(3, "done")]
    assert h.journal(old) == [] and h.status(old).journal_length == 0
    assert h.status(old).status == COMPLETED and h.status(old).output is not None
    assert refused(h, old) == "input_unavailable"
    assert refused(h, old, copy_prefix_up_to=1, deployment=OTHER_DEPLOYMENT) == (
        "input_unavailable"
    )


def test_journal_not_retained_means_no_input(h: Harness) -> None:
    old = completed_greet(h, completion_retention_ms=DAY, journal_retention_ms=0)
    assert refused(h, old) == "input_unavailable"


def test_purge_journal_of_running_and_unknown(h: Harness) -> None:
    running, _ = h.invoke(GREETER)
    results = [
        of_type(h.apply(PurgeJournal(invocation_id, 4)), CommandReply)[0].result
        for invocation_id in (running, new_invocation_id(42).to_bytes())
    ]
    assert results == ["not_completed", "not_found"]
    assert h.journal(running)
