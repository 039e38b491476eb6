"""The SDK's invocation machine and engine, driven with protocol bytes: no sockets."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import restate_sdk as restate
from restate_sdk.definitions import HandlerInfo
from restate_sdk.invocation import Engine
from restate_sdk.vm import InvocationMachine
from restate_server.protocol import messages as pm
from restate_server.protocol.framing import FrameDecoder, encode_frame

INVOCATION_ID = bytes.fromhex("b8459d3141e8500d4609fac9dcc983c2a227cd77165765f1")

svc = restate.Service("Svc")
obj = restate.VirtualObject("Obj")


@svc.handler()
async def greet(ctx: restate.Context, name: str) -> str:
    return f"Hello, {name}!"


@svc.handler()
async def steps(ctx: restate.Context, tag: str) -> str:
    first = await ctx.run_typed("one", lambda: f"{tag}-1")
    await ctx.sleep(timedelta(seconds=1))
    return await ctx.run_typed("two", lambda: f"{first}-2")


@svc.handler()
async def renamed(ctx: restate.Context, tag: str) -> str:
    return await ctx.run_typed("other-name", lambda: "x")


@svc.handler()
async def fails(ctx: restate.Context, tag: str) -> str:
    raise restate.TerminalError("no", 418)


@svc.handler()
async def boom(ctx: restate.Context, tag: str) -> str:
    raise ValueError("transient")


@svc.handler()
async def race(ctx: restate.Context, tag: str) -> str:
    a = ctx.sleep(timedelta(seconds=10))
    b = ctx.sleep(timedelta(seconds=10))
    name, _ = await restate.select(a=a, b=b)
    return str(name)


@obj.handler()
async def add(ctx: restate.ObjectContext, n: int) -> int:
    value = (await ctx.get("count") or 0) + n
    ctx.set("count", value)
    return int(value)


def _info(fn: Any) -> HandlerInfo:
    return fn.__restate_handler__  # type: ignore[no-any-return]


def _frames(*messages: pm.Message, known: int | None = None, **start: Any) -> bytes:
    entries = [m for m in messages]
    start_message = pm.StartMessage(
        id=INVOCATION_ID,
        debug_id="inv_118SCwqFkHqg7lvsJiPTNS3ab5Df26t2US",
        known_entries=known if known is not None else len(entries),
        random_seed=7,
        **start,
    )
    return b"".join(encode_frame(m) for m in [start_message, *entries])


def _input(value: bytes) -> pm.InputCommandMessage:
    return pm.InputCommandMessage(value=value)


async def _run(fn: Any, data: bytes, close: bool = True) -> list[pm.Message]:
    machine = InvocationMachine(6)
    engine = Engine(machine, _info(fn), {}, lambda: None)
    machine.feed(data)
    if close:
        machine.close_input()
    await asyncio.wait_for(engine.run(), 5)
    return [
        pm.decode_message(f.type_id, f.body) for f in FrameDecoder().feed(machine.take_output())
    ]


async def test_simple_call_writes_output_and_end() -> None:
    out = await _run(greet, _frames(_input(b'"Ann"')))
    assert out == [pm.OutputCommandMessage(value=b'"Hello, Ann!"'), pm.EndMessage()]


async def test_run_proposes_then_suspends_when_input_is_closed() -> None:
    out = await _run(steps, _frames(_input(b'"t"')))
    assert out[0] == pm.RunCommandMessage(result_completion_id=1, name="one")
    assert out[1] == pm.ProposeRunCompletionMessage(result_completion_id=1, value=b'"t-1"')
    assert isinstance(out[2], pm.SuspensionMessage)
    assert out[2].waiting_completions == [1] and out[2].waiting_signals == [1]


async def test_replay_takes_results_from_the_journal() -> None:
    journal = [
        _input(b'"t"'),
        pm.RunCommandMessage(result_completion_id=1, name="one"),
        pm.RunCompletionNotificationMessage(completion_id=1, value=b'"journaled"'),
        pm.SleepCommandMessage(wake_up_time=1, result_completion_id=2),
        pm.SleepCompletionNotificationMessage(completion_id=2, void=True),
    ]
    out = await _run(steps, _frames(*journal))
    # nothing replayed is written again; the second run executes with the journaled value
    assert out[0] == pm.RunCommandMessage(result_completion_id=3, name="two")
    assert out[1] == pm.ProposeRunCompletionMessage(result_completion_id=3, value=b'"journaled-2"')


async def test_changed_code_is_a_journal_mismatch() -> None:
    journal = [_input(b'"t"'), pm.RunCommandMessage(result_completion_id=1, name="one")]
    out = await _run(renamed, _frames(*journal))
    [error] = out
    assert isinstance(error, pm.ErrorMessage)
    assert error.code == 570
    assert "one" in error.message and "other-name" in error.message
    assert error.related_command_index == 1


async def test_terminal_and_retryable_errors() -> None:
    out = await _run(fails, _frames(_input(b'"t"')))
    assert out == [
        pm.OutputCommandMessage(failure=pm.Failure(code=418, message="no")),
        pm.EndMessage(),
    ]
    [error] = await _run(boom, _frames(_input(b'"t"')))
    assert isinstance(error, pm.ErrorMessage) and error.code == 500
    assert "transient" in error.message


async def test_eager_state_and_lazy_state() -> None:
    eager = await _run(
        add, _frames(_input(b"2"), key="k", state_map=[pm.StateEntry(key=b"count", value=b"5")])
    )
    assert eager[0] == pm.GetEagerStateCommandMessage(key=b"count", value=b"5")
    assert eager[1] == pm.SetStateCommandMessage(key=b"count", value=b"7")
    assert eager[2] == pm.OutputCommandMessage(value=b"7")
    lazy = await _run(add, _frames(_input(b"2"), key="k", partial_state=True))
    assert lazy[0] == pm.GetLazyStateCommandMessage(key=b"count", result_completion_id=1)
    assert isinstance(lazy[1], pm.SuspensionMessage)


async def test_select_picks_what_the_journal_completed_first() -> None:
    journal = [
        _input(b'"t"'),
        pm.SleepCommandMessage(wake_up_time=1, result_completion_id=1),
        pm.SleepCommandMessage(wake_up_time=1, result_completion_id=2),
        pm.SleepCompletionNotificationMessage(completion_id=2, void=True),
        pm.SleepCompletionNotificationMessage(completion_id=1, void=True),
    ]
    out = await _run(race, _frames(*journal))
    assert out[0] == pm.OutputCommandMessage(value=b'"b"')


async def test_cancel_signal_fails_the_pending_await() -> None:
    journal = [
        _input(b'"t"'),
        pm.RunCommandMessage(result_completion_id=1, name="one"),
        pm.SignalNotificationMessage(signal_id=1, void=True),
    ]
    out = await _run(steps, _frames(*journal))
    assert out[0] == pm.OutputCommandMessage(failure=pm.Failure(code=409, message="Cancelled"))


async def test_live_notifications_resume_a_waiting_handler() -> None:
    machine = InvocationMachine(6)
    engine = Engine(machine, _info(steps), {}, lambda: None)
    machine.feed(_frames(_input(b'"t"')))
    task = asyncio.create_task(engine.run())
    await asyncio.sleep(0.01)
    first = [
        pm.decode_message(f.type_id, f.body) for f in FrameDecoder().feed(machine.take_output())
    ]
    assert first[-1] == pm.ProposeRunCompletionMessage(result_completion_id=1, value=b'"t-1"')
    machine.feed(encode_frame(pm.RunCompletionNotificationMessage(completion_id=1, value=b'"t-1"')))
    engine.on_input()
    await asyncio.sleep(0.01)
    sleep = [
        pm.decode_message(f.type_id, f.body) for f in FrameDecoder().feed(machine.take_output())
    ]
    assert isinstance(sleep[0], pm.SleepCommandMessage)
    machine.feed(encode_frame(pm.SleepCompletionNotificationMessage(completion_id=2, void=True)))
    engine.on_input()
    await asyncio.sleep(0.01)
    machine.feed(
        encode_frame(pm.RunCompletionNotificationMessage(completion_id=3, value=b'"t-1-2"'))
    )
    engine.on_input()
    await asyncio.wait_for(task, 5)
    rest = [
        pm.decode_message(f.type_id, f.body) for f in FrameDecoder().feed(machine.take_output())
    ]
    assert rest[-2:] == [pm.OutputCommandMessage(value=b'"t-1-2"'), pm.EndMessage()]


def test_deterministic_random_from_the_seed() -> None:
    values = []
    for _ in range(2):
        machine = InvocationMachine(6)
        machine.feed(_frames(_input(b'"t"')))
        ctx = Engine(machine, _info(greet), {}, lambda: None).context
        values.append((ctx.random().random(), ctx.uuid()))
    assert values[0] == values[1]
