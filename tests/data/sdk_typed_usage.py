"""User code that must type-check under mypy --strict (see tests/unit/test_sdk_typing.py)."""

from datetime import timedelta

import restate_sdk as restate

svc = restate.Service("S")


@svc.handler()
async def double(ctx: restate.Context, n: int) -> int:
    def step() -> int:
        return n * 2

    value: int = await ctx.run_typed("double", step)
    await ctx.sleep(timedelta(milliseconds=1))
    other: int = await ctx.service_call(double, 1)
    awakeable_id, awakeable = ctx.awakeable(type_hint=str)
    ctx.resolve_awakeable(awakeable_id, "x")
    assert isinstance(await awakeable, str)
    _ = await restate.gather(ctx.sleep(timedelta(seconds=1)))
    return value + other
