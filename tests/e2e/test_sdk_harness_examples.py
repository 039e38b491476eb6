"""The examples, run through restate_sdk's own test harness (server in this process)."""

from __future__ import annotations

import pytest

from examples import services
from restate_sdk.client import HttpError
from restate_sdk.harness import create_test_harness


async def test_examples_through_the_harness() -> None:
    async with create_test_harness(services.app) as env:
        client = env.client
        assert await client.service_call(services.greet, "World") == "Hello, World!"
        assert await client.object_call(services.add, "c1", 5) == 5
        assert await client.object_call(services.add, "c1", 2) == 7
        assert await client.object_call(services.get, "c1", None) == 7
        receipt = await client.workflow_send(services.run, "order-1", services.Payment(amount=42))
        assert receipt.status == "Accepted"
        await client.workflow_call(services.approve, "order-1", None)
        result = await client.attach(receipt.invocation_id)
        assert result == b'{"status":"completed","amount":42}'
        with pytest.raises(HttpError) as error:
            await client.generic_call("Nope", "x", b"")
        assert error.value.status_code == 404


async def test_harness_always_replay_and_subprocess_server() -> None:
    async with create_test_harness(services.app, in_process=False, always_replay=True) as env:
        assert await env.client.object_call(services.add, "r", 1) == 1
        receipt = await env.client.workflow_send(
            services.run, "order-2", services.Payment(amount=1)
        )
        await env.client.workflow_call(services.decline, "order-2", None)
        assert b"cancelled" in await env.client.attach(receipt.invocation_id)
