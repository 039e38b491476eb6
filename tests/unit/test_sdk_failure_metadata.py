"""restate_sdk's TerminalError metadata, as in the official Python SDK 1.2.0: sent with the
handler's and ``ctx.run``'s failures, and seen on a failed call or run. No sockets."""

from __future__ import annotations

import asyncio
from typing import Any

import restate_sdk as restate
from restate_sdk.definitions import HandlerInfo
from restate_sdk.invocation import Engine
from restate_sdk.vm import InvocationMachine
from restate_server.protocol import messages as pm
from restate_server.protocol.framing import FrameDecoder, encode_frame

INVOCATION_ID = bytes.fromhex("b8459d3141e8500d4609fac9dcc983c2a227cd77165765f1")

svc = restate.Service("MetaSvc")


@svc.handler()
async def fails(ctx: restate.Context, tag: str) -> str:
    raise restate.TerminalError("bad", 418, {"reason": "teapot", "tier": "gold"})


@svc.handler()
async def fails_plain(ctx: restate.Context, tag: str) -> str:
    raise restate.TerminalError("bad", 418)


def _refuse() -> str:
    raise restate.TerminalError("bad", 422, {"step": "run"})


@svc.handler()
async def run_fails(ctx: restate.Context, tag: str) -> str:
    return await ctx.run_typed("r", _refuse)


@svc.handler()
async def catches(ctx: restate.Context, tag: str) -> Any:
    try:
        await ctx.run_typed("r", _refuse)
    except restate.TerminalError as e:
        return {"code": e.status_code, "message": e.message, "metadata": e.metadata}
    return "no"


def _info(fn: Any) -> HandlerInfo:
    return fn.__restate_handler__  # type: ignore[no-any-return]


def _frames(*entries: pm.Message) -> bytes:
    start = pm.StartMessage(
        id=INVOCATION_ID,
        debug_id="inv_118SCwqFkHqg7lvsJiPTNS3ab5Df26t2US",
        known_entries=len(entries),
        random_seed=7,
    )
    return b"".join(encode_frame(m) for m in [start, *entries])


async def _run(fn: Any, *journal: pm.Message) -> list[pm.Message]:
    machine = InvocationMachine(6)
    engine = Engine(machine, _info(fn), {}, lambda: None)
    machine.feed(_frames(pm.InputCommandMessage(value=b'"t"'), *journal))
    machine.close_input()
    await asyncio.wait_for(engine.run(), 5)
    return [
        pm.decode_message(f.type_id, f.body) for f in FrameDecoder().feed(machine.take_output())
    ]


def _failure(code: int, pairs: list[tuple[str, str]]) -> pm.Failure:
    metadata = [pm.FailureMetadata(key=k, value=v) for k, v in pairs]
    return pm.Failure(code=code, message="bad", metadata=metadata)


def test_metadata_defaults_to_none_like_the_official_sdk() -> None:
    assert restate.TerminalError("x").metadata is None
    assert restate.TerminalError("x", 400, {"a": "b"}).metadata == {"a": "b"}


async def test_handler_failure_sends_its_metadata() -> None:
    out = await _run(fails)
    expected = _failure(418, [("reason", "teapot"), ("tier", "gold")])
    assert out == [pm.OutputCommandMessage(failure=expected), pm.EndMessage()]
    out = await _run(fails_plain)
    assert out[0] == pm.OutputCommandMessage(failure=pm.Failure(code=418, message="bad"))


async def test_run_failure_proposes_its_metadata() -> None:
    out = await _run(run_fails)
    assert out[0] == pm.RunCommandMessage(result_completion_id=1, name="r")
    assert out[1] == pm.ProposeRunCompletionMessage(
        result_completion_id=1, failure=_failure(422, [("step", "run")])
    )


async def test_replayed_run_failure_raises_with_its_metadata() -> None:
    out = await _run(
        catches,
        pm.RunCommandMessage(result_completion_id=1, name="r"),
        pm.RunCompletionNotificationMessage(
            completion_id=1, failure=_failure(422, [("z", "1"), ("a", "2")])
        ),
    )
    [output, _end] = out
    assert isinstance(output, pm.OutputCommandMessage)
    assert output.value == b'{"code":422,"message":"bad","metadata":{"z":"1","a":"2"}}'


async def test_replayed_failure_without_metadata_has_none() -> None:
    out = await _run(
        catches,
        pm.RunCommandMessage(result_completion_id=1, name="r"),
        pm.RunCompletionNotificationMessage(completion_id=1, failure=_failure(422, [])),
    )
    assert out[0] == pm.OutputCommandMessage(value=b'{"code":422,"message":"bad","metadata":null}')
