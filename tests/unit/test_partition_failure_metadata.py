"""Terminal failure metadata (protocol V6 ``Failure.metadata``) through the partition, the
stored records and the ingress error bodies: no sockets.

What the real server 1.7.12 does (measured with the TS SDK, tests/e2e/test_error_metadata.py):
an invocation's failed outcome keeps its metadata as a map sorted by key (ingress body,
attach, call completion); run completions and awakeable signals keep the SDK's order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from restate_server.http_server import Request
from restate_server.ingress.errors import error_response
from restate_server.ingress.responses import reply_response
from restate_server.partition.actions import IngressReply, InvokeAttempt, NotifyInvoker
from restate_server.partition.commands import (
    AttachCaller,
    AttemptEnded,
    KillInvocation,
    ProposeRunCompletion,
)
from restate_server.partition.journal_messages import (
    failure_from_pm,
    notification,
    outcome_failure_from_pm,
)
from restate_server.protocol import messages as pm
from restate_server.protocol.ids import InvocationId, awakeable_id
from restate_server.storage.records import Failure, Outcome, decode_status
from tests.unit.fake_schema import FakeSchema
from tests.unit.partition_harness import GREETER, Harness, of_type

UNORDERED = [("zeta", "1"), ("alpha", ""), ("mid", "é")]
SORTED = (("alpha", ""), ("mid", "é"), ("zeta", "1"))


@pytest.fixture
def h(tmp_path) -> Iterator[Harness]:
    harness = Harness(str(tmp_path / "db"), FakeSchema())
    yield harness
    harness.close()


def _pm_failure(code: int, message: str, pairs: list[tuple[str, str]]) -> pm.Failure:
    return pm.Failure(
        code=code,
        message=message,
        metadata=[pm.FailureMetadata(key=k, value=v) for k, v in pairs],
    )


def _pairs(failure: pm.Failure | None) -> list[tuple[str, str]]:
    assert failure is not None
    return [(m.key, m.value) for m in failure.metadata]


def _notifications(h: Harness, invocation_id: bytes) -> list[Any]:
    return [
        pm.decode_message(e.type_id, e.body)
        for e in h.journal(invocation_id)
        if e.type_id >= 0x8000
    ]


def _fail(h: Harness, invocation_id: bytes, failure: pm.Failure) -> list[Any]:
    h.sdk(invocation_id, pm.OutputCommandMessage(failure=failure))
    return h.apply(AttemptEnded(invocation_id, h.status(invocation_id).epoch))


def _request() -> Request:
    return Request("POST", "/Failer/fail", [], b"")


# ---- stored records


def test_old_failure_records_still_decode() -> None:
    old = msgspec.msgpack.encode([418, "bad"])  # written before the metadata field existed
    assert msgspec.msgpack.decode(old, type=Failure) == Failure(418, "bad")
    assert msgspec.msgpack.decode(old, type=Failure).metadata is None
    old_outcome = msgspec.msgpack.encode([None, [500, "x"]])
    assert msgspec.msgpack.decode(old_outcome, type=Outcome).failure == Failure(500, "x")


def test_failure_metadata_round_trips_in_storage() -> None:
    failure = Failure(418, "bad", SORTED)
    data = msgspec.msgpack.encode(Outcome(failure=failure))
    assert msgspec.msgpack.decode(data, type=Outcome).failure == failure


# ---- conversions


def test_conversions_without_metadata_allocate_none() -> None:
    failure = failure_from_pm(pm.Failure(code=418, message="bad"))
    assert failure == Failure(418, "bad") and failure.metadata is None
    failure = outcome_failure_from_pm(pm.Failure(code=418, message="bad"))
    assert failure is not None and failure.metadata is None
    assert failure_from_pm(None) is None and outcome_failure_from_pm(None) is None
    _, body = notification(pm.RunCompletionNotificationMessage, completion_id=1, failure=failure)
    decoded = pm.decode_message(pm.RunCompletionNotificationMessage.TYPE, body)
    assert decoded.failure == pm.Failure(code=418, message="bad")


def test_journal_failures_keep_the_sdk_order() -> None:
    failure = failure_from_pm(_pm_failure(409, "bad", UNORDERED))
    assert failure == Failure(409, "bad", tuple(UNORDERED))


def test_outcome_failures_are_a_sorted_map() -> None:
    failure = outcome_failure_from_pm(_pm_failure(400, "bad", [*UNORDERED, ("zeta", "2")]))
    # a repeated key keeps its last value (the real server panics on it)
    assert failure == Failure(400, "bad", (("alpha", ""), ("mid", "é"), ("zeta", "2")))


def test_v5_encoding_of_a_notification_with_metadata() -> None:
    """V5 has no Failure.metadata; the field is unknown to a V5 SDK, which skips it."""
    message = pm.CallCompletionNotificationMessage(
        completion_id=2, failure=_pm_failure(418, "bad", UNORDERED)
    )
    body = pm.encode_message(message, 5)
    decoded = pm.decode_message(message.TYPE, body, 5)
    assert decoded.failure.code == 418 and _pairs(decoded.failure) == UNORDERED


# ---- the state machine


def test_failed_output_with_metadata_is_the_sorted_outcome(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER, completion_retention_ms=60_000, idempotency_key="k")
    h.sdk(invocation_id, pm.OutputCommandMessage(failure=_pm_failure(418, "bad", UNORDERED)))
    # the journaled Output entry is kept as the SDK wrote it
    entry = h.journal(invocation_id)[-1]
    assert _pairs(pm.decode_message(entry.type_id, entry.body).failure) == UNORDERED
    actions = h.apply(AttemptEnded(invocation_id, h.status(invocation_id).epoch))
    [reply] = of_type(actions, IngressReply)
    assert reply.outcome.failure == Failure(418, "bad", SORTED)
    # retained: attach/output read the stored outcome with the metadata
    assert h.status(invocation_id).output == Outcome(failure=Failure(418, "bad", SORTED))
    [reply] = of_type(h.apply(AttachCaller(invocation_id, 5, wait=False)), IngressReply)
    assert reply.outcome.failure == Failure(418, "bad", SORTED)


def test_call_completion_carries_the_callee_metadata(h: Harness) -> None:
    caller, _ = h.invoke(GREETER)
    call = pm.CallCommandMessage(
        service_name="Greeter",
        handler_name="greet",
        parameter=b'"p"',
        invocation_id_notification_idx=1,
        result_completion_id=2,
    )
    [started] = of_type(h.sdk(caller, call), InvokeAttempt)
    h.suspend(caller, [2])
    _fail(h, started.invocation_id, _pm_failure(418, "bad", UNORDERED))
    result = _notifications(h, caller)[-1]
    assert isinstance(result, pm.CallCompletionNotificationMessage)
    assert result.completion_id == 2
    assert result.failure == _pm_failure(418, "bad", list(SORTED))


def test_run_failure_is_journaled_and_echoed_with_metadata(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER)
    h.sdk(invocation_id, pm.RunCommandMessage(result_completion_id=1, name="r"))
    epoch = h.status(invocation_id).epoch
    failure = failure_from_pm(_pm_failure(422, "bad", UNORDERED))
    actions = h.apply(ProposeRunCompletion(invocation_id, epoch, 1, None, failure))
    [notify] = of_type(actions, NotifyInvoker)
    echoed = pm.decode_message(notify.type_id, notify.body)
    assert echoed.failure.code == 422 and _pairs(echoed.failure) == UNORDERED
    # what a replay sends back is the journal entry, with the metadata
    [journaled] = _notifications(h, invocation_id)
    assert journaled == echoed


def test_awakeable_rejection_carries_metadata_to_the_waiter(h: Harness) -> None:
    waiter, _ = h.invoke(GREETER)
    h.suspend(waiter, [], [1, 17])
    rejecter, _ = h.invoke(GREETER)
    awk = awakeable_id(InvocationId.from_bytes(waiter), 17)
    message = pm.CompleteAwakeableCommandMessage(
        awakeable_id=awk, failure=_pm_failure(409, "bad", UNORDERED)
    )
    assert of_type(h.sdk(rejecter, message), InvokeAttempt)
    signal = _notifications(h, waiter)[-1]
    assert signal.signal_id == 17 and signal.failure.code == 409
    assert _pairs(signal.failure) == UNORDERED


def test_named_signal_rejection_carries_metadata(h: Harness) -> None:
    target, _ = h.invoke(GREETER)
    sender, _ = h.invoke(GREETER)
    message = pm.SendSignalCommandMessage(
        target_invocation_id=str(InvocationId.from_bytes(target)),
        name="approved",
        failure=_pm_failure(403, "no", UNORDERED),
    )
    h.sdk(sender, message)
    signal = _notifications(h, target)[-1]
    assert signal.signal_name == "approved" and _pairs(signal.failure) == UNORDERED


def test_kill_has_no_metadata(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER)
    [reply] = of_type(h.apply(KillInvocation(invocation_id)), IngressReply)
    assert reply.outcome.failure is not None and reply.outcome.failure.metadata is None


def test_status_with_metadata_survives_a_reload(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER, completion_retention_ms=60_000)
    _fail(h, invocation_id, _pm_failure(418, "bad", [("k", "v")]))
    from restate_server.storage import keys

    raw = h.store.get(keys.invocation_status(invocation_id))
    assert raw is not None
    assert decode_status(raw).output == Outcome(failure=Failure(418, "bad", (("k", "v"),)))


# ---- ingress error bodies


def test_error_body_with_metadata_is_the_real_servers() -> None:
    resp = error_response(
        _request(), 418, "bad", "invocation", invocation_id="inv_1", metadata=SORTED
    )
    assert resp.status == 418
    assert (
        resp.body
        == (
            '{"code":418,"message":"bad","metadata":{"alpha":"","mid":"é","zeta":"1"},'
            '"source":"invocation"}'
        ).encode()
    )
    assert resp.headers["x-restate-error-source"] == "invocation"


def test_error_body_without_metadata_has_no_metadata_key() -> None:
    resp = error_response(_request(), 418, "bad", "invocation")
    assert json.loads(resp.body) == {"code": 418, "message": "bad", "source": "invocation"}
    assert error_response(_request(), 418, "bad", "invocation", metadata=()).body == resp.body


def test_reply_response_renders_the_outcome_metadata(h: Harness) -> None:
    invocation_id, _ = h.invoke(GREETER)
    [reply] = of_type(_fail(h, invocation_id, _pm_failure(418, "bad", UNORDERED)), IngressReply)
    resp = reply_response(_request(), reply, "application/json")
    assert resp.status == 418
    assert json.loads(resp.body) == {
        "code": 418,
        "message": "bad",
        "metadata": dict(SORTED),
        "source": "invocation",
    }
    assert list(json.loads(resp.body)["metadata"]) == ["alpha", "mid", "zeta"]
