"""Example services written with restate_sdk: a greeter, a counter and a payment workflow.

Serve them (HTTP/2 cleartext) and register them with a running server:

    .venv/bin/python -m hypercorn --config examples/hypercorn.toml examples.services:app \\
        --bind 127.0.0.1:9080
    curl -X POST localhost:9070/deployments -H 'content-type: application/json' \\
         -d '{"uri": "http://127.0.0.1:9080"}'
    curl localhost:8080/Greeter/greet -H 'content-type: application/json' -d '"World"'
    curl localhost:8080/Counter/my-counter/add -H 'content-type: application/json' -d '5'
    curl localhost:8080/PaymentWorkflow/order-1/run/send -H 'content-type: application/json' \\
         -d '{"amount": 42}'
    curl -X POST localhost:8080/PaymentWorkflow/order-1/approve
    curl localhost:8080/restate/workflow/PaymentWorkflow/order-1/attach
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel

import restate_sdk as restate

greeter = restate.Service("Greeter")


@greeter.handler()
async def greet(ctx: restate.Context, name: str) -> str:
    return f"Hello, {name}!"


counter = restate.VirtualObject("Counter")


@counter.handler()
async def add(ctx: restate.ObjectContext, delta: int) -> int:
    value: int = (await ctx.get("count", type_hint=int) or 0) + delta
    ctx.set("count", value)
    return value


@counter.handler(kind="shared")
async def get(ctx: restate.ObjectSharedContext) -> int:
    value: int | None = await ctx.get("count", type_hint=int)
    return value or 0


class Payment(BaseModel):
    amount: int


class PaymentResult(BaseModel):
    status: str
    amount: int


payment = restate.Workflow("PaymentWorkflow")


@payment.main()
async def run(ctx: restate.WorkflowContext, request: Payment) -> PaymentResult:
    """Reserve the amount, wait for an approval decision, then charge or release."""

    async def reserve() -> str:
        return f"reservation-{ctx.key()}"

    reservation = await ctx.run_typed("reserve", reserve)
    ctx.set("reservation", reservation)
    approval = ctx.promise("approval", type_hint=bool)
    decision, approved = await restate.select(
        approval=approval.value(), timeout=ctx.sleep(timedelta(days=1))
    )
    if decision == "approval" and approved:

        async def charge() -> None:
            return None

        await ctx.run_typed("charge", charge)
        return PaymentResult(status="completed", amount=request.amount)

    async def release() -> None:
        return None

    await ctx.run_typed("release", release)
    return PaymentResult(status="cancelled", amount=request.amount)


@payment.handler()
async def approve(ctx: restate.WorkflowSharedContext) -> None:
    await ctx.promise("approval", type_hint=bool).resolve(True)


@payment.handler()
async def decline(ctx: restate.WorkflowSharedContext) -> None:
    await ctx.promise("approval", type_hint=bool).resolve(False)


app = restate.app([greeter, counter, payment])
