"""Test services on the official Python SDK (restate-sdk 1.2.0), same as ../ts_services/app.mjs.

Serve with hypercorn over h2c: ``python -m hypercorn --bind 127.0.0.1:PORT app:app``.

Environment:
    SIDE_EFFECTS_FILE  Steps appends "<tag> stepN" lines here (skipped when unset)
    GATE_DIR           Steps/threeSteps creates GATE_DIR/<tag>.waiting when step3 starts, then
                       waits for the file GATE_DIR/<tag> before recording step3
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import restate
from restate import Context, ObjectContext, ObjectSharedContext

# ---- Greeter ----------------------------------------------------------------------------

greeter = restate.Service("Greeter")


@greeter.handler(name="greet")
async def greet(ctx: Context, name: str | None) -> str:
    return f"Hello, {name or 'World'}!"


@greeter.handler(name="fail")
async def fail(ctx: Context, msg: str | None) -> None:
    raise restate.TerminalError(msg or "failed", status_code=418)


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


app = restate.app(services=[greeter, counter, lazy_counter, steps, flaky, sleeper])
