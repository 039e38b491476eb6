"""A restate_sdk endpoint that only serves requests signed with IDENTITY_KEY."""

from __future__ import annotations

import os

import restate_sdk as restate

greeter = restate.Service("Greeter")


@greeter.handler()
async def greet(ctx: restate.Context, name: str) -> str:
    return f"Hello, {name}!"


app = restate.app([greeter], identity_keys=[os.environ["IDENTITY_KEY"]])
