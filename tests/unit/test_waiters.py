"""Waiters: a partition's reply reaches the request that registered its id, once."""

from __future__ import annotations

from restate_server.partition.actions import IngressSendAck
from restate_server.partition.waiters import Waiters


def _ack(request_id: int) -> IngressSendAck:
    return IngressSendAck(request_id, b"i" * 24, previously_accepted=False)


async def test_a_future_and_a_callback_each_get_their_answer_once() -> None:
    waiters = Waiters()
    request_id, future = waiters.register()
    answers: list[IngressSendAck] = []
    callback_id = waiters.register_callback(answers.append)
    assert request_id != callback_id and len(waiters) == 2
    waiters.perform(_ack(callback_id))
    waiters.perform(_ack(request_id))
    waiters.perform(_ack(request_id))  # a repeat finds nobody
    assert answers == [_ack(callback_id)]
    assert future.result() == _ack(request_id)
    assert len(waiters) == 0


async def test_a_failing_callback_does_not_stop_the_others() -> None:
    waiters = Waiters()

    def broken(_answer: object) -> None:
        raise RuntimeError("bug")

    broken_id = waiters.register_callback(broken)
    answers: list[IngressSendAck] = []
    good_id = waiters.register_callback(answers.append)
    waiters.perform(_ack(broken_id))
    waiters.perform(_ack(good_id))
    assert answers == [_ack(good_id)]


async def test_a_forgotten_request_is_not_answered() -> None:
    waiters = Waiters()
    request_id, future = waiters.register()
    waiters.forget(request_id)
    waiters.perform(_ack(request_id))
    assert not future.done()


async def test_a_command_that_comes_back_to_its_callers_process_answers_the_caller() -> None:
    # node a's caller waits for id X; the command goes to b, back to a (its partition was
    # moving), and on to b again, which answers: the answer must reach a's caller
    waiters = Waiters()
    request_id, future = waiters.register()
    sent_back: list[IngressSendAck] = []
    waiters.register_forward(request_id, sent_back.append)
    waiters.perform(_ack(request_id))
    assert future.result() == _ack(request_id) and sent_back == []
    assert len(waiters) == 0


async def test_a_forward_resent_over_a_new_connection_replaces_the_old_one() -> None:
    waiters = Waiters()
    old: list[IngressSendAck] = []
    new: list[IngressSendAck] = []
    waiters.register_forward(7, old.append)
    waiters.register_forward(7, new.append)
    waiters.perform(_ack(7))
    assert old == [] and new == [_ack(7)] and len(waiters) == 0
