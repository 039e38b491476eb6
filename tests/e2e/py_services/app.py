"""Test services for the Python SDKs, same as ../ts_services/app.mjs.

The one module serves both Python SDKs: ``TEST_SDK`` picks the import, ``restate`` (the
official restate-sdk 1.2.0, default) or ``restate_sdk`` (ours), so our SDK runs the
very code written for the official one.

Serve with hypercorn over h2c: ``python -m hypercorn --bind 127.0.0.1:PORT app:app``.

Environment:
    TEST_SDK           the SDK module to import (``restate`` or ``restate_sdk``)
    SIDE_EFFECTS_FILE  Steps appends "<tag> stepN" lines here (skipped when unset)
    GATE_DIR           Steps/threeSteps creates GATE_DIR/<tag>.waiting when step3 starts, then
                       waits for the file GATE_DIR/<tag> before recording step3
    IDENTITY_KEY       serve only requests signed by this request identity key
                       (``publickeyv1_...``); others get 401
"""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import restate
else:
    restate = importlib.import_module(os.environ.get("TEST_SDK", "restate"))

Context = restate.Context
InvocationRetryPolicy = restate.InvocationRetryPolicy
ObjectContext = restate.ObjectContext
ObjectSharedContext = restate.ObjectSharedContext
TerminalError = restate.TerminalError
WorkflowContext = restate.WorkflowContext
WorkflowSharedContext = restate.WorkflowSharedContext

# ---- Greeter ----------------------------------------------------------------------------

greeter = restate.Service("Greeter")


@greeter.handler(name="greet")
async def greet(ctx: Context, name: str | None) -> str:
    return f"Hello, {name or 'World'}!"


@greeter.handler(name="fail")
async def fail(ctx: Context, msg: str | None) -> None:
    raise restate.TerminalError(msg or "failed", status_code=418)


@greeter.handler(name="headers")
async def headers(ctx: Context) -> dict[str, str]:
    """The invocation's request headers, as the handler sees them."""
    return dict(ctx.request().headers)


@greeter.handler(name="failDefault")
async def fail_default(ctx: Context, msg: str | None) -> None:
    raise restate.TerminalError(msg or "failed")


# ---- Counter / LazyCounter --------------------------------------------------------------


async def _add_to(ctx: ObjectContext, n: int | None) -> int:
    value = (await ctx.get("count") or 0) + (n or 0)
    ctx.set("count", value)
    return value


async def _current(ctx: ObjectSharedContext) -> int:
    return await ctx.get("count") or 0


counter = restate.VirtualObject("Counter")


@counter.handler(name="add")
async def counter_add(ctx: ObjectContext, n: int | None) -> int:
    return await _add_to(ctx, n)


@counter.handler(name="get", kind="shared")
async def counter_get(ctx: ObjectSharedContext) -> int:
    return await _current(ctx)


@counter.handler(name="reset")
async def counter_reset(ctx: ObjectContext) -> None:
    ctx.clear_all()


@counter.handler(name="slowAdd")
async def counter_slow_add(ctx: ObjectContext, req: dict[str, Any]) -> int:
    """Hold the key's exclusive lock for ``req["ms"]`` (in-process sleep inside a run)."""
    ms = (req or {}).get("ms") or 0

    async def pause() -> None:
        await asyncio.sleep(ms / 1000)

    await ctx.run_typed("pause", pause)
    return await _add_to(ctx, (req or {}).get("n"))


@counter.handler(name="keys", kind="shared")
async def counter_keys(ctx: ObjectSharedContext) -> list[str]:
    return sorted(await ctx.state_keys())


lazy_counter = restate.VirtualObject("LazyCounter", enable_lazy_state=True)


@lazy_counter.handler(name="add")
async def lazy_add(ctx: ObjectContext, n: int | None) -> int:
    return await _add_to(ctx, n)


@lazy_counter.handler(name="get", kind="shared")
async def lazy_get(ctx: ObjectSharedContext) -> int:
    return await _current(ctx)


# ---- Steps ------------------------------------------------------------------------------


def _record_side_effect(line: str) -> None:
    path = os.environ.get("SIDE_EFFECTS_FILE")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


async def _wait_for_gate(tag: str) -> None:
    gate_dir = os.environ.get("GATE_DIR")
    if not gate_dir:
        return
    # Tell the test that step3 is running, so step2's result is already journaled.
    (Path(gate_dir) / f"{tag}.waiting").touch()
    gate = Path(gate_dir) / tag
    while not gate.exists():
        await asyncio.sleep(0.05)


steps = restate.Service("Steps")


@steps.handler(name="threeSteps")
async def three_steps(ctx: Context, tag: str) -> str:
    """Three journaled steps; step3 waits for GATE_DIR/<tag> (kill the endpoint before)."""

    async def step1() -> None:
        _record_side_effect(f"{tag} step1")

    async def step2() -> None:
        _record_side_effect(f"{tag} step2")

    async def step3() -> None:
        await _wait_for_gate(tag)
        _record_side_effect(f"{tag} step3")

    await ctx.run_typed("step1", step1)
    await ctx.run_typed("step2", step2)
    await ctx.run_typed("step3", step3)
    return f"done {tag}"


# ---- Flaky ------------------------------------------------------------------------------

# In memory, per process: a restarted endpoint fails once more per tag.
_attempts: dict[str, int] = {}

flaky = restate.Service("Flaky")


@flaky.handler(name="failOnce")
async def fail_once(ctx: Context, tag: str) -> int:
    attempt = _attempts.get(tag, 0) + 1
    _attempts[tag] = attempt
    if attempt == 1:
        raise RuntimeError(f"failOnce({tag}): transient failure on attempt 1")
    return attempt


sleeper = restate.Service("Sleeper")


@sleeper.handler(name="sleep")
async def sleep(ctx: Context, ms: int | None) -> str:
    """A durable timer: with a short inactivity timeout the invocation suspends meanwhile."""
    await ctx.sleep(timedelta(milliseconds=ms or 0))
    return "slept"


@sleeper.handler(name="sleepOnce")
async def sleep_once(ctx: Context, req: dict[str, Any]) -> str:
    await ctx.sleep(timedelta(milliseconds=req["ms"]))

    async def woke() -> None:
        _record_side_effect(f"woke {req['tag']} {int(time.time() * 1000)}")

    await ctx.run_typed("woke", woke)
    return "woke"


# ---- building blocks: calls, sagas, awakeables, workflows, cancellation ----------------

travel = restate.Service("Travel")


@travel.handler(name="reserve")
async def reserve(ctx: Context, req: dict[str, Any]) -> str:
    async def record() -> None:
        _record_side_effect(f"reserve {req['tag']} {req['what']}")

    await ctx.run_typed("record", record)
    if req.get("fail"):
        raise TerminalError(f"{req['what']} unavailable", status_code=409)
    return f"{req['what']} reserved"


@travel.handler(name="cancel")
async def cancel(ctx: Context, req: dict[str, Any]) -> str:
    async def record() -> None:
        _record_side_effect(f"cancel {req['tag']} {req['what']}")

    await ctx.run_typed("record", record)
    return f"{req['what']} cancelled"


saga = restate.Service("Saga")


@saga.handler(name="book")
async def book(ctx: Context, tag: str) -> str:
    """Three reservations; the third fails terminally, the first two are undone in reverse."""
    compensations: list[str] = []
    try:
        for what in ("flight", "hotel", "car"):
            await ctx.service_call(reserve, {"tag": tag, "what": what, "fail": what == "car"})
            compensations.append(what)
        return "booked"
    except TerminalError:
        for what in reversed(compensations):
            await ctx.service_call(cancel, {"tag": tag, "what": what})
        raise


fan_out = restate.Service("FanOut")


@fan_out.handler(name="greetMany")
async def greet_many(ctx: Context, n: int) -> list[str]:
    calls = [ctx.service_call(greet, str(i)) for i in range(n)]
    await restate.gather(*calls)
    return [await call for call in calls]


@fan_out.handler(name="addMany")
async def add_many(ctx: Context, req: dict[str, Any]) -> list[int]:
    calls = [ctx.object_call(counter_add, req["key"], 1) for _ in range(req["n"])]
    await restate.gather(*calls)
    return [await call for call in calls]


@fan_out.handler(name="sendLater")
async def send_later(ctx: Context, req: dict[str, Any]) -> str:
    handle = ctx.object_send(
        counter_add, req["key"], 1, send_delay=timedelta(milliseconds=req["ms"])
    )
    return await handle.invocation_id()


awaker = restate.Service("Awaker")


@awaker.handler(name="wait")
async def wait_awakeable(ctx: Context, tag: str) -> str:
    awakeable_id, promise = ctx.awakeable()

    async def publish() -> None:
        _record_side_effect(f"awk {tag} {awakeable_id}")

    await ctx.run_typed("publish", publish)
    return f"got {await promise}"


@awaker.handler(name="resolve")
async def resolve_awakeable(ctx: Context, req: dict[str, Any]) -> None:
    ctx.resolve_awakeable(req["id"], req["value"])


payment = restate.Workflow("Payment")


@payment.main(name="run")
async def payment_run(ctx: WorkflowContext, req: dict[str, Any]) -> str:
    key = ctx.key()
    ctx.set("status", "reserving")

    async def reserve_funds() -> None:
        _record_side_effect(f"reserve {key} {req['amount']}")

    await ctx.run_typed("reserve", reserve_funds)
    ctx.set("status", "waiting")
    approved = await ctx.promise("approval").value()
    if approved:

        async def charge() -> None:
            _record_side_effect(f"charge {key}")

        await ctx.run_typed("charge", charge)
        ctx.set("status", "completed")
        return "completed"

    async def release() -> None:
        _record_side_effect(f"release {key}")

    await ctx.run_typed("release", release)
    ctx.set("status", "cancelled")
    return "cancelled"


@payment.handler(name="approve")
async def payment_approve(ctx: WorkflowSharedContext) -> str:
    await ctx.promise("approval").resolve(True)
    return "approved"


@payment.handler(name="decline")
async def payment_decline(ctx: WorkflowSharedContext) -> str:
    await ctx.promise("approval").resolve(False)
    return "declined"


@payment.handler(name="status")
async def payment_status(ctx: WorkflowSharedContext) -> str:
    return await ctx.get("status") or "unknown"


canceller = restate.Service("Canceller")


@canceller.handler(name="longSleep")
async def long_sleep(ctx: Context, tag: str) -> str:
    """Blocked in a long sleep; a cancel makes it run its compensation and fail."""
    try:
        await ctx.sleep(timedelta(seconds=60))
        return "woke"
    except TerminalError:

        async def compensate() -> None:
            _record_side_effect(f"compensate {tag}")

        await ctx.run_typed("compensate", compensate)
        raise


@canceller.handler(name="parentOfLongSleep")
async def parent_of_long_sleep(ctx: Context, tag: str) -> str:
    """Waits for a child blocked in a long sleep; cancelling this one cancels the child."""
    return await ctx.service_call(long_sleep, tag)


@canceller.handler(name="stuck")
async def stuck(ctx: Context, tag: str) -> str:
    """A side effect that never succeeds: retried forever until killed."""

    async def forever() -> None:
        _record_side_effect(f"try {tag}")
        raise RuntimeError("still failing")

    await ctx.run_typed("forever", forever)
    return "unreachable"


_first_attempts: set[str] = set()
random_service = restate.Service("Random")


@random_service.handler(name="values")
async def random_values(ctx: Context, tag: str) -> dict[str, Any]:
    """Deterministic randomness: the same values on every attempt of one invocation."""
    r = ctx.random().random()
    u = str(ctx.uuid())
    _record_side_effect(f"rand {tag} {r} {u}")
    if tag not in _first_attempts:
        _first_attempts.add(tag)
        raise RuntimeError("fail the first attempt")
    return {"r": r, "u": u}


retry_kill = restate.Service(
    "RetryKill",
    invocation_retry_policy=InvocationRetryPolicy(
        max_attempts=3, on_max_attempts="kill", initial_interval=timedelta(milliseconds=50)
    ),
)


@retry_kill.handler(name="always")
async def always(ctx: Context, tag: str) -> str:
    _record_side_effect(f"attempt {tag}")
    raise RuntimeError(f"boom {tag}")


retry_pause = restate.Service(
    "RetryPause",
    invocation_retry_policy=InvocationRetryPolicy(
        max_attempts=2, on_max_attempts="pause", initial_interval=timedelta(milliseconds=50)
    ),
)


@retry_pause.handler(name="untilGate")
async def until_gate(ctx: Context, tag: str) -> str:
    _record_side_effect(f"attempt {tag}")
    gate_dir = os.environ.get("GATE_DIR")
    if not gate_dir or not (Path(gate_dir) / tag).exists():
        raise RuntimeError(f"gate {tag} closed")
    return f"passed {tag}"


_flip_attempts: dict[str, int] = {}
nondeterministic = restate.Service(
    "Nondeterministic",
    invocation_retry_policy=InvocationRetryPolicy(
        max_attempts=3, on_max_attempts="kill", initial_interval=timedelta(milliseconds=50)
    ),
)


@nondeterministic.handler(name="flip")
async def flip(ctx: Context, tag: str) -> str:
    """Journals a different step on its second attempt: a journal mismatch (570)."""
    attempt = _flip_attempts.get(tag, 0) + 1
    _flip_attempts[tag] = attempt

    async def step() -> str:
        return "done"

    await ctx.run_typed("first" if attempt == 1 else "second", step)
    if attempt == 1:
        raise RuntimeError("fail after the first step")
    return "unreachable"


app = restate.app(
    services=[
        greeter,
        counter,
        lazy_counter,
        steps,
        flaky,
        sleeper,
        travel,
        saga,
        fan_out,
        awaker,
        payment,
        canceller,
        random_service,
        retry_kill,
        retry_pause,
        nondeterministic,
    ],
    identity_keys=[os.environ["IDENTITY_KEY"]] if os.environ.get("IDENTITY_KEY") else None,
)
