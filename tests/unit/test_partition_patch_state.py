"""PatchState in the partition state machine: whole-state replacement, versions, ordering
behind the key's lock (as restate-server 1.7.12 does it: queued in the key's inbox)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from restate_server.partition.actions import CommandReply, InvokeAttempt
from restate_server.partition.commands import KillInvocation, PatchState
from restate_server.partition.state_version import state_version
from restate_server.protocol import messages as pm
from restate_server.protocol.ids import partition_key_for_key
from restate_server.storage import keys
from restate_server.storage.records import INBOXED, INVOKED, Target
from tests.unit.partition_harness import Harness, counter, of_type

K1 = counter("k1")


@pytest.fixture
def h(tmp_path) -> Iterator[Harness]:
    harness = Harness(str(tmp_path / "db"))
    yield harness
    harness.close()


def patch(
    state: dict[bytes, bytes], version: str | None = None, request_id: int | None = 9
) -> PatchState:
    pk = partition_key_for_key("Counter", "k1")
    return PatchState(pk, "Counter", "k1", sorted(state.items()), version, request_id)


def set_state(h: Harness, invocation_id: bytes, key: bytes, value: bytes) -> None:
    h.sdk(invocation_id, pm.SetStateCommandMessage(key=key, value=value))


def seed_state(h: Harness, state: dict[bytes, bytes]) -> None:
    """Leave ``state`` on Counter/k1 through an ordinary invocation."""
    invocation_id, _ = h.invoke(K1)
    for key, value in state.items():
        set_state(h, invocation_id, key, value)
    h.end(invocation_id)


def inbox(h: Harness, target: Target) -> list[bytes]:
    assert target.key is not None
    pk = partition_key_for_key(target.service, target.key)
    prefix = keys.inbox_prefix(pk, target.service, target.key)
    return [value for _, value in h.store.scan_prefix(prefix)]


def test_replaces_the_whole_state_of_a_free_key(h: Harness) -> None:
    seed_state(h, {b"a": b"1", b"b": b"2"})
    actions = h.apply(patch({b"b": b"20", b"c": b"30"}))
    assert h.state(K1) == {b"b": b"20", b"c": b"30"}
    assert actions == [CommandReply(9, "accepted")]
    h.apply(patch({}))
    assert h.state(K1) == {}


def test_matching_version_applies(h: Harness) -> None:
    seed_state(h, {b"count": b"7"})
    version = state_version([(b"count", b"7")])
    h.apply(patch({b"count": b"8"}, version))
    assert h.state(K1) == {b"count": b"8"}
    # the empty state has a version too
    h.apply(patch({}))
    h.apply(patch({b"x": b"1"}, "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"))
    assert h.state(K1) == {b"x": b"1"}


def test_other_version_is_dropped_but_still_accepted(h: Harness) -> None:
    seed_state(h, {b"count": b"7"})
    actions = h.apply(patch({b"count": b"99"}, "wrong"))
    assert actions == [CommandReply(9, "accepted")]
    assert h.state(K1) == {b"count": b"7"}


def test_waits_behind_the_running_exclusive_invocation(h: Harness) -> None:
    holder, _ = h.invoke(K1)
    set_state(h, holder, b"count", b"1")
    actions = h.apply(patch({b"count": b"42"}))
    # accepted once committed, but not applied while the key is held
    assert actions == [CommandReply(9, "accepted")]
    assert h.state(K1) == {b"count": b"1"}
    assert len(inbox(h, K1)) == 1
    set_state(h, holder, b"count", b"2")
    h.end(holder)
    assert h.state(K1) == {b"count": b"42"}
    assert inbox(h, K1) == []
    # the key is free again: the next invocation starts at once
    following, actions = h.invoke(K1)
    assert of_type(actions, InvokeAttempt) and h.status(following).status == INVOKED


def test_keeps_its_place_among_queued_invocations(h: Harness) -> None:
    holder, _ = h.invoke(K1)
    before, _ = h.invoke(K1)
    h.apply(patch({b"count": b"42"}))
    after, _ = h.invoke(K1)
    assert h.status(before).status == INBOXED and h.status(after).status == INBOXED

    actions = h.end(holder)
    # the invocation queued first runs first, before the state changes
    assert [a.invocation_id for a in of_type(actions, InvokeAttempt)] == [before]
    assert h.state(K1) == {}
    set_state(h, before, b"count", b"1")
    actions = h.end(before)
    # then the mutation, then the invocation queued after it
    assert h.state(K1) == {b"count": b"42"}
    assert [a.invocation_id for a in of_type(actions, InvokeAttempt)] == [after]
    assert h.status(after).status == INVOKED


def test_version_is_compared_when_the_mutation_runs(h: Harness) -> None:
    holder, _ = h.invoke(K1)
    # computed from the state seen now (empty); the holder changes it before the mutation runs
    h.apply(patch({b"count": b"5"}, state_version([])))
    set_state(h, holder, b"count", b"101")
    h.end(holder)
    assert h.state(K1) == {b"count": b"101"}


def test_shared_handlers_do_not_hold_the_key(h: Harness) -> None:
    h.invoke(counter("k1", "get", "shared"))
    h.apply(patch({b"count": b"3"}))
    assert h.state(K1) == {b"count": b"3"}


def test_killing_the_holder_runs_the_queued_mutation(h: Harness) -> None:
    holder, _ = h.invoke(K1)
    h.apply(patch({b"count": b"3"}))
    h.apply(KillInvocation(holder))
    assert h.state(K1) == {b"count": b"3"}


def test_other_keys_are_untouched(h: Harness) -> None:
    other = counter("k2")
    invocation_id, _ = h.invoke(other)
    set_state(h, invocation_id, b"count", b"1")
    h.end(invocation_id)
    h.apply(patch({}))
    assert h.state(other) == {b"count": b"1"}
