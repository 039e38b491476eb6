"""Benchmark services in Python, served by hypercorn. ``BENCH_SDK`` picks the SDK:
``restate`` (the official SDK, default) or ``restate_sdk`` (ours); the handler code is
the same for both, so the table compares the SDKs and nothing else."""

from __future__ import annotations

import importlib
import os
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import restate
else:
    restate = importlib.import_module(os.environ.get("BENCH_SDK", "restate"))

Context = restate.Context
ObjectContext = restate.ObjectContext
ObjectSharedContext = restate.ObjectSharedContext
WorkflowContext = restate.WorkflowContext

greeter = restate.Service("Greeter")


@greeter.handler(name="greet")
async def greet(ctx: Context, name: str | None) -> str:
    return f"Hello, {name or 'World'}!"


counter = restate.VirtualObject("Counter")


@counter.handler(name="add")
async def add(ctx: ObjectContext, n: int | None) -> int:
    value = (await ctx.get("count") or 0) + (n or 0)
    ctx.set("count", value)
    return int(value)


@counter.handler(name="get", kind="shared")
async def get(ctx: ObjectSharedContext) -> int:
    return int(await ctx.get("count") or 0)


steps = restate.Workflow("ThreeSteps")


@steps.main(name="run")
async def run(ctx: WorkflowContext, value: str) -> str:
    async def one() -> str:
        return f"{value}-1"

    a = await ctx.run_typed("one", one)

    async def two() -> str:
        return f"{a}-2"

    b = await ctx.run_typed("two", two)

    async def three() -> str:
        return f"{b}-3"

    return await ctx.run_typed("three", three)


sleeper = restate.Service("Sleeper")


@sleeper.handler(name="sleep")
async def sleep(ctx: Context, ms: int | None) -> str:
    await ctx.sleep(timedelta(milliseconds=ms or 100))
    return "slept"


app = restate.app([greeter, counter, steps, sleeper])
